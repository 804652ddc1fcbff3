module grovebench

go 1.19
