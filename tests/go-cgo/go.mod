module flightrec/tests/gocgo

go 1.19
