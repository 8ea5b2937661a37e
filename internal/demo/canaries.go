package demo

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/example/order-mcp/internal/store"
)

// Canaries returns a canary customer with orders of its own, to be planted
// beside real data (`server seed --canary`): a customer and orders that
// look like any other in a copy of the database, whose ids are listed in
// the canaries table so that the server answers "not found" for them and
// raises the alarm (internal/store/canaries.go).
//
// Their ids are random, made anew for each database, never derived from
// fixed names as the demo's are: a canary whose id can be read in this
// repository is one an attacker knows to avoid. Nothing in the tests or
// the documentation may name them either.
func Canaries(now time.Time) (store.SeedData, error) {
	id := func(prefix string) (string, error) {
		var b [10]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("canary id: %w", err)
		}
		return prefix + "_" + base32Crockford(b[:]), nil
	}
	customerID, err := id("cus")
	if err != nil {
		return store.SeedData{}, err
	}
	c, err := canaryCustomer(customerID)
	if err != nil {
		return store.SeedData{}, err
	}
	var r [16]byte // the random values below
	if _, err := rand.Read(r[:]); err != nil {
		return store.SeedData{}, fmt.Errorf("canary: %w", err)
	}
	d := store.SeedData{
		Customers: []store.SeedCustomer{{ID: c.ID, Name: c.Name, Email: c.Email, Phone: c.Phone, Address: c.Address,
			City: c.City, PostalCode: c.PostalCode, Country: c.Country,
			CreatedAt: now.AddDate(-1, -int(r[0])%12, -int(r[1])%28).Add(-time.Duration(r[2]) * time.Minute)}},
		Canaries: []string{c.ID},
	}
	// Orders shaped like the demo's (pending and processing ones among
	// them, so a cancellation would have something to do), but no copy of
	// any: their dates are shifted by a random span, and their totals,
	// item counts, cards and tracking numbers drawn at random, so that no
	// demo order in the same database mirrors them.
	shifted := now.Add(-time.Duration(int(r[3])%40+1)*24*time.Hour - time.Duration(int(r[4])<<8|int(r[5]))*time.Second)
	for j := range 4 {
		o := order(shifted, 5, j, c)
		if o.ID, err = id("ord"); err != nil {
			return store.SeedData{}, err
		}
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return store.SeedData{}, fmt.Errorf("canary order: %w", err)
		}
		o.TotalCents = 1000 + int64(b[0])<<6 + int64(b[1])
		o.CostCents = o.TotalCents * 6 / 10
		o.ItemCount = 1 + int(b[2])%4
		o.CardBrand = demoCards[int(b[3])%len(demoCards)]
		o.CardLast4 = fmt.Sprintf("%04d", (int(b[4])<<8|int(b[5]))%10000)
		if o.Shipment != nil {
			o.Shipment.TrackingNumber = fmt.Sprintf("1Z%09d", (uint32(b[4])<<24|uint32(b[5])<<16|uint32(b[6])<<8|uint32(b[7]))%1_000_000_000)
		}
		o.DeliveryInstructions, o.InternalNote = "", ""
		d.Orders = append(d.Orders, o)
		d.Canaries = append(d.Canaries, o.ID)
	}
	return d, nil
}

// canaryCustomer makes up the canary customer's contact data at random
// from a few common names, streets and cities, so that, like its ids, it
// cannot be read in this repository: a canary a leaked dump shows by its
// name is one an attacker knows to avoid.
func canaryCustomer(id string) (Customer, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Customer{}, fmt.Errorf("canary customer: %w", err)
	}
	first := []string{"Elin", "Anna", "Maria", "Sara", "Johan", "Erik", "Lars", "Karin", "Emma", "Oskar", "Nils", "Ida"}
	last := []string{"Sandberg", "Lindqvist", "Johansson", "Berg", "Holm", "Norberg", "Ek", "Lund", "Wiklund", "Forsberg"}
	streets := []string{"Hornsgatan", "Götgatan", "Sveavägen", "Drottninggatan", "Birger Jarlsgatan", "Kungsgatan"}
	f, l := first[int(b[0])%len(first)], last[int(b[1])%len(last)]
	return Customer{
		ID:         id,
		Name:       f + " " + l,
		Email:      fmt.Sprintf("%s.%s%d@example.net", strings.ToLower(f), strings.ToLower(l), int(b[2])%90+10),
		Phone:      fmt.Sprintf("+46 8 %03d %03d %02d", 100+int(b[3])%900, int(b[4])%1000, int(b[5])%100),
		Address:    fmt.Sprintf("%s %d", streets[int(b[2])%len(streets)], 1+int(b[5])%120),
		City:       "Stockholm",
		PostalCode: fmt.Sprintf("1%02d %02d", 10+int(b[3])%80, int(b[4])%100),
		Country:    "SE",
		Currency:   "SEK",
	}, nil
}
