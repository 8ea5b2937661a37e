package main

import (
	"testing"

	embeddedpostgres "github.com/fergusstrange/embedded-postgres"
)

func TestVersionForInstalledPostgres(t *testing.T) {
	tests := []struct {
		name, output string
		want         embeddedpostgres.PostgresVersion
		ok           bool
	}{
		{"Debian15", "postgres (PostgreSQL) 15.19 (Debian 15.19-0+deb12u1)\n", embeddedpostgres.V15, true},
		{"Upstream17", "postgres (PostgreSQL) 17.2\n", embeddedpostgres.V17, true},
		{"Unknown", "not postgres", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := versionFor(tt.output)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("versionFor(%q) = %q, %v", tt.output, got, ok)
			}
		})
	}
}

func TestFirstCustomerFromSeedOutput(t *testing.T) {
	out := "seeded 6 customers and 48 orders (existing rows left as they were)\ndemo customers:\n  cus_RJ9WY4J6SWDG2W01\n  cus_AC4ABTCDRVS2NCTC\n"
	if got := firstCustomer(out); got != "cus_RJ9WY4J6SWDG2W01" {
		t.Fatalf("got %q", got)
	}
}
