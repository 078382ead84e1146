// Package zstd only pins github.com/DataDog/zstd for bench/real/run.sh, which builds that
// module's own test suite with `go test -c github.com/DataDog/zstd`.
package zstd

import _ "github.com/DataDog/zstd"
