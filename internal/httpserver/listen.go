package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Server is the listening HTTP server with its timeouts.
type Server struct {
	srv      *http.Server
	listener net.Listener
	certFile string
	keyFile  string
}

// Listen opens addr and prepares to serve h. With certFile and keyFile it
// serves TLS (1.2 and newer).
//
// Timeouts bound what a slow or malicious client can hold: headers must
// arrive within 5 seconds (slowloris), a whole request within 30, idle
// keep-alive connections close after 2 minutes. There is no server-wide
// write timeout, which would cut server-sent event streams in stateful
// mode; instead each request gets a write deadline (writeDeadline).
func Listen(addr string, h http.Handler, certFile, keyFile string, logger *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           writeDeadline(h, 60*time.Second),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}
	return &Server{srv: srv, listener: ln, certFile: certFile, keyFile: keyFile}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// Serve serves until Shutdown.
func (s *Server) Serve() error {
	var err error
	if s.certFile != "" {
		err = s.srv.ServeTLS(s.listener, s.certFile, s.keyFile)
	} else {
		err = s.srv.Serve(s.listener)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for requests in flight.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// OnShutdown registers f to run when Shutdown begins. Long-lived requests
// (the event streams of stateful sessions) never finish on their own, so
// shutdown must end them rather than wait out its deadline.
func (s *Server) OnShutdown(f func()) { s.srv.RegisterOnShutdown(f) }

// writeDeadline gives each request a write deadline, except server-sent
// event streams (GET with Accept: text/event-stream), which stay open by
// design and are bounded by the session idle timeout instead.
func writeDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !(r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/event-stream")) {
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
		}
		h.ServeHTTP(w, r)
	})
}
