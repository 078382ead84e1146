module cgoscope.test/testcmd

go 1.21
