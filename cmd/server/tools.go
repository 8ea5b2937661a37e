package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/example/order-mcp/internal/app"
	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/config"
	"github.com/example/order-mcp/internal/surface"
	"github.com/example/order-mcp/internal/tools"
)

const toolsUsage = "usage: server tools digest [--scopes a,b]"

// toolsCmd prints what the server publishes of its tool surface. It needs
// no database: the definitions are compiled in, so a build's digest can
// be printed (and reviewed, or published) before it is deployed.
func toolsCmd(cfg *config.Config, logger *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "digest" {
		return errors.New(toolsUsage)
	}
	fs := newFlags("tools digest")
	scopeList := fs.String("scopes", "", "print only the digest a caller with these scopes sees (comma-separated; empty set: \"\")")
	if err := parseFlags(fs, args[1:], toolsUsage); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errors.New(toolsUsage)
	}
	// What serve publishes, signed with what serve signs with: outside
	// development the key is required here too.
	if err := cfg.ToolDigestKeyRequired(); err != nil {
		return err
	}
	signer, err := app.DigestSigner(cfg, logger)
	if err != nil {
		return err
	}
	pin, err := surface.New(tools.All(), signer)
	if err != nil {
		return err
	}
	scopesGiven := false
	fs.Visit(func(f *flag.Flag) { scopesGiven = scopesGiven || f.Name == "scopes" })
	if !scopesGiven {
		_, err := stdout.Write(pin.Document())
		return err
	}
	var scopes []auth.Scope
	for _, s := range strings.Split(*scopeList, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(auth.KnownScopes(), auth.Scope(s)) {
			return fmt.Errorf("unknown scope %q; known scopes: %s", s, knownScopes())
		}
		scopes = append(scopes, auth.Scope(s))
	}
	_, err = fmt.Fprintln(stdout, pin.Digest(scopes))
	return err
}
