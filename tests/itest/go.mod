module cgoscope.test/itest

go 1.21
