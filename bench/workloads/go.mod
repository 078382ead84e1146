module cgoscope.bench/workloads

go 1.21
