module cgoscope.test/testprogs

go 1.21
