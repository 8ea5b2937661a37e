package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/example/order-mcp/internal/app"
	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/config"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/store"
)

// The administrative commands run as the user in DATABASE_URL, which owns
// the schema: they are the operator's tools, not the model's. Each one that
// changes something is recorded in the audit trail.

// admin opens the owner connection and an audit writer on it. timeout
// bounds each statement: a minute for most commands, more for reading the
// whole audit trail.
func admin(ctx context.Context, cfg *config.Config, logger *slog.Logger, timeout time.Duration) (*store.Store, *audit.Writer, func(), error) {
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{StatementTimeout: timeout, MaxConns: 2})
	if err != nil {
		return nil, nil, nil, err
	}
	sealer, err := app.Sealer(cfg, logger)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	w := audit.NewWriter(db, sealer, logger, audit.Options{})
	return db, w, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = w.Close(cctx)
		db.Close()
	}, nil
}

func migrate(ctx context.Context, cfg *config.Config, logger *slog.Logger, stdout io.Writer) error {
	applied, err := store.Migrate(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return err
	}
	db, w, done, err := admin(ctx, cfg, logger, time.Minute)
	if err != nil {
		return err
	}
	defer done()
	outcome := fmt.Sprintf("applied %d", len(applied))
	if err := w.Admin(ctx, "migrate", outcome, applied...); err != nil {
		return fmt.Errorf("migrated, but could not record it in the audit trail: %w", err)
	}
	fmt.Fprintf(stdout, "migrations applied: %d\n", len(applied))
	if cfg.DBLoginRole != "" {
		if err := db.EnsureLoginRole(ctx, cfg.DBLoginRole, cfg.DBLoginPassword); err != nil {
			return err
		}
		if err := w.Admin(ctx, "login role", "ensured", cfg.DBLoginRole); err != nil {
			return fmt.Errorf("login role ready, but could not record it in the audit trail: %w", err)
		}
		fmt.Fprintf(stdout, "login role %s can log in and become %s, nothing else\n", cfg.DBLoginRole, store.AppRole)
	}
	return nil
}

const seedUsage = "usage: server seed [--canary]"

func seed(ctx context.Context, cfg *config.Config, logger *slog.Logger, args []string, stdout io.Writer) error {
	fs := newFlags("seed")
	canary := fs.Bool("canary", false, "plant canary records instead of the demo data, once: a customer and orders no legitimate flow touches")
	if err := parseFlags(fs, args, seedUsage); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errors.New(seedUsage)
	}
	db, w, done, err := admin(ctx, cfg, logger, time.Minute)
	if err != nil {
		return err
	}
	defer done()
	if *canary {
		// Canaries belong in a production database, where the demo data
		// (whose ids are published in this repository) does not.
		return seedCanaries(ctx, db, w, stdout)
	}
	res, err := db.Seed(ctx, demo.Dataset(time.Now()))
	if err != nil {
		return fmt.Errorf("seed: %w (has `server migrate` run?)", err)
	}
	if err := w.Admin(ctx, "seed", fmt.Sprintf("customers %d, orders %d", res.Customers, res.Orders)); err != nil {
		return fmt.Errorf("seeded, but could not record it in the audit trail: %w", err)
	}
	fmt.Fprintf(stdout, "seeded %d customers and %d orders (existing rows left as they were)\n", res.Customers, res.Orders)
	fmt.Fprintln(stdout, "demo customers:")
	for _, c := range demo.Customers() {
		fmt.Fprintf(stdout, "  %s\n", c.ID)
	}
	return nil
}

// seedCanaries plants canary records
// (docs/BEYOND-THE-CHECKLIST.md#canary-records) unless some are planted
// already: a customer and its orders, with random ids and values, which
// the server answers as "not found" while it raises the alarm. It prints
// their ids, once, so the operator can check the alarm; keep them out of
// anything a legitimate flow reads (documentation, fixtures, support
// scripts) and out of the audit trail.
func seedCanaries(ctx context.Context, db *store.Store, w *audit.Writer, stdout io.Writer) error {
	n, err := db.CountCanaries(ctx)
	if err != nil {
		return fmt.Errorf("seed --canary: %w (has `server migrate` run?)", err)
	}
	if n > 0 {
		fmt.Fprintf(stdout, "canary records: %d ids already planted, none added\n", n)
		return nil
	}
	data, err := demo.Canaries(time.Now())
	if err != nil {
		return err
	}
	res, err := db.Seed(ctx, data)
	if err != nil {
		return fmt.Errorf("seed --canary: %w", err)
	}
	// The record counts what was planted and names none of it: whoever
	// reads the audit trail need not learn which ids are canaries.
	if err := w.Admin(ctx, "seed canary", fmt.Sprintf("customers %d, orders %d", res.Customers, res.Orders)); err != nil {
		return fmt.Errorf("canaries planted, but could not record it in the audit trail: %w", err)
	}
	fmt.Fprintf(stdout, "planted %d canary records (no legitimate flow touches them; a call that does is logged at ERROR, "+
		"audited as canary and counted in order_mcp_canary_hits_total):\n", res.Canaries)
	for _, id := range data.Canaries {
		fmt.Fprintf(stdout, "  %s\n", id)
	}
	return nil
}

func keys(ctx context.Context, cfg *config.Config, getenv func(string) string, logger *slog.Logger, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	db, w, done, err := admin(ctx, cfg, logger, time.Minute)
	if err != nil {
		return err
	}
	defer done()
	switch args[0] {
	case "create":
		return keysCreate(ctx, cfg, getenv, db, w, args[1:], stdout, stderr)
	case "list":
		return keysList(ctx, db, stdout)
	case "revoke":
		if len(args) != 2 || !auth.LooksLikeAPIKeyID(args[1]) {
			return errors.New("usage: server keys revoke <key id> (12 characters, as shown by keys list)")
		}
		if err := db.RevokeAPIKey(ctx, args[1]); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no key with id %s", args[1])
			}
			return err
		}
		if err := w.Admin(ctx, "keys revoke", "revoked", args[1]); err != nil {
			return fmt.Errorf("revoked, but could not record it in the audit trail: %w", err)
		}
		fmt.Fprintf(stdout, "revoked %s\n", args[1])
		return nil
	}
	return errUsage
}

const keysCreateUsage = "usage: server keys create --name N --scopes a,b [--customer ID] [--expires DUR] [--replace]"

// keysCreate mints a key. The key itself is printed once, alone, as the
// last line of stdout, so scripts can take it with `tail -n 1`; everything
// else, ready-to-paste client configuration included, goes to stderr. Only
// its hash is stored. With --replace, the active keys of the same name are
// revoked first, so a command that mints a demo key on every start (make
// run, compose) does not pile up keys that never expire.
func keysCreate(ctx context.Context, cfg *config.Config, getenv func(string) string, db *store.Store, w *audit.Writer, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys create")
	name := fs.String("name", "", "a label for the key (who or what uses it)")
	scopeList := fs.String("scopes", "", "comma-separated scopes: "+knownScopes())
	customer := fs.String("customer", "", "bind the key to this customer id")
	expires := fs.Duration("expires", 0, "expire the key after this long, e.g. 720h (default: never)")
	replace := fs.Bool("replace", false, "revoke the active keys with the same name first")
	if err := parseFlags(fs, args, keysCreateUsage); err != nil {
		return err
	}
	if fs.NArg() != 0 || *name == "" || len(*name) > 100 || strings.IndexFunc(*name, unicode.IsControl) >= 0 {
		return errors.New(keysCreateUsage)
	}
	var scopes []auth.Scope
	for _, s := range strings.Split(*scopeList, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(auth.KnownScopes(), auth.Scope(s)) {
			return fmt.Errorf("unknown scope %q; known scopes: %s", s, knownScopes())
		}
		if !slices.Contains(scopes, auth.Scope(s)) {
			scopes = append(scopes, auth.Scope(s))
		}
	}
	if len(scopes) == 0 {
		return fmt.Errorf("--scopes is required; known scopes: %s", knownScopes())
	}
	// Fail closed at minting time too: a key that is neither bound to a
	// customer nor staff would be refused on every request.
	if *customer == "" && !slices.Contains(scopes, auth.ScopeReadAny) {
		return errors.New("a key needs --customer, or the orders:read:any scope to be a staff key")
	}
	if *expires < 0 {
		return errors.New("--expires must be positive")
	}
	if *replace {
		revoked, err := db.RevokeAPIKeysNamed(ctx, *name)
		if err != nil {
			return err
		}
		for _, id := range revoked {
			if err := w.Admin(ctx, "keys revoke", "revoked (replaced)", id); err != nil {
				return fmt.Errorf("revoked %s, but could not record it in the audit trail: %w", id, err)
			}
			fmt.Fprintf(stderr, "revoked %s, the earlier key named %q\n", id, *name)
		}
	}
	k, err := auth.GenerateAPIKey()
	if err != nil {
		return err
	}
	rec := store.APIKey{KeyID: k.KeyID, Name: *name, SecretSHA256: k.SecretSHA256, Scopes: auth.ScopeNames(scopes), CustomerID: *customer}
	if *expires > 0 {
		t := time.Now().Add(*expires)
		rec.ExpiresAt = &t
	}
	if err := db.CreateAPIKey(ctx, rec); err != nil {
		if errors.Is(err, store.ErrUnknownCustomer) {
			return fmt.Errorf("no customer with id %s", *customer)
		}
		return err
	}
	if err := w.Admin(ctx, "keys create", "created", k.KeyID); err != nil {
		return fmt.Errorf("key created, but could not record it in the audit trail: %w", err)
	}
	fmt.Fprintf(stderr, "created key %s (%s) with scopes %s", k.KeyID, *name, strings.Join(auth.ScopeNames(scopes), ","))
	if *customer != "" {
		fmt.Fprintf(stderr, " for customer %s", *customer)
	}
	fmt.Fprintln(stderr)
	printSnippets(stderr, cfg, getenv, k.Key)
	fmt.Fprintln(stderr, "the key is shown once, on the next line; only its hash is stored:")
	fmt.Fprintln(stdout, k.Key)
	return nil
}

// knownScopes lists the scopes for usage and error messages.
func knownScopes() string { return strings.Join(auth.ScopeNames(auth.KnownScopes()), ", ") }

func keysList(ctx context.Context, db *store.Store, stdout io.Writer) error {
	keys, err := db.ListAPIKeys(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCUSTOMER\tCREATED\tEXPIRES\tSTATE")
	now := time.Now()
	for _, k := range keys {
		state, expires := "active", "never"
		if k.ExpiresAt != nil {
			expires = k.ExpiresAt.UTC().Format(time.RFC3339)
			if !now.Before(*k.ExpiresAt) {
				state = "expired"
			}
		}
		if k.RevokedAt != nil {
			state = "revoked"
		}
		customer := k.CustomerID
		if customer == "" {
			customer = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.KeyID, k.Name, strings.Join(k.Scopes, ","), customer,
			k.CreatedAt.UTC().Format(time.RFC3339), expires, state)
	}
	return tw.Flush()
}

const auditUsage = "usage: server audit verify | server audit tail [-n N]"

func auditCmd(ctx context.Context, cfg *config.Config, logger *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(auditUsage)
	}
	switch args[0] {
	case "verify":
		if len(args) != 1 {
			return errors.New(auditUsage)
		}
		return auditVerify(ctx, cfg, logger, stdout)
	case "tail":
		fs := newFlags("audit tail")
		n := fs.Int64("n", 20, "how many of the newest records to print")
		if err := parseFlags(fs, args[1:], auditUsage); err != nil {
			return err
		}
		if fs.NArg() != 0 || *n <= 0 || *n > 10_000 {
			return errors.New(auditUsage)
		}
		return auditTail(ctx, cfg, *n, stdout)
	}
	return errors.New(auditUsage)
}

// auditVerify checks the chain with every key it may have been sealed
// with, and says which key sealed which records.
func auditVerify(ctx context.Context, cfg *config.Config, logger *slog.Logger, stdout io.Writer) error {
	keys, err := app.Keyring(cfg, logger)
	if err != nil {
		return err
	}
	// Verifying only reads, so it needs no audit writer of its own; it
	// streams the whole trail in one statement, so it may run long.
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{StatementTimeout: 6 * time.Hour, MaxConns: 1})
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := audit.Verify(ctx, db, keys)
	if err != nil {
		return err
	}
	if rep.FirstBad != 0 {
		return fmt.Errorf("audit trail broken at seq %d of %d: %s", rep.FirstBad, rep.Entries, rep.Problem)
	}
	fmt.Fprintf(stdout, "audit trail intact: %d records; head seq %d hmac %x\n", rep.Entries, rep.HeadSeq, rep.HeadHMAC)
	for _, r := range rep.Keys {
		who := "key " + r.KeyID
		if r.Development {
			who = "the public development key (those records prove nothing)"
		}
		fmt.Fprintf(stdout, "  records %d-%d sealed by %s\n", r.From, r.To, who)
	}
	if rep.Replayed > 0 {
		fmt.Fprintf(stdout, "  %d records were spilled during an outage and appended afterwards (replayed)\n", rep.Replayed)
	}
	return nil
}

// auditTail prints the newest n records, redacted as the log is: an
// operator's first look at what happened.
func auditTail(ctx context.Context, cfg *config.Config, n int64, stdout io.Writer) error {
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{StatementTimeout: time.Minute, MaxConns: 1})
	if err != nil {
		return err
	}
	defer db.Close()
	head, err := db.AuditHead(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tPRINCIPAL\tACTION\tDECISION\tOUTCOME\tOBJECTS\tARGUMENTS")
	err = db.ReadAudit(ctx, max(0, head-n), n, func(e *store.AuditEntry) error {
		principal := e.Principal
		if e.Kind == "refusal" {
			principal = fmt.Sprintf("%s (from %s, x%d)", principal, e.Source, e.Count)
		}
		outcome := e.Outcome
		if e.Reason != "" {
			outcome += " (" + e.Reason + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.RecordedAt.Format(time.RFC3339), e.Kind,
			logging.RedactString(principal), e.Action, e.Decision, logging.RedactString(outcome),
			strings.Join(e.ObjectIDs, ","), logging.RedactString(e.Arguments))
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Flush()
}
