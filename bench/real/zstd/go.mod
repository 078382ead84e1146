module cgoscope.bench/real/zstd

go 1.21

require github.com/DataDog/zstd v1.5.7
