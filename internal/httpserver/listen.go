package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/sdkfix"
)

// Server is the listening HTTP server with its timeouts.
type Server struct {
	srv      *http.Server
	listener net.Listener
	certFile string
	keyFile  string
	draining atomic.Bool // shutdown has begun
}

// Timeouts bound what a slow or malicious client can hold.
type Timeouts struct {
	// ReadHeader: the request headers must arrive within it (slowloris).
	ReadHeader time.Duration
	// Read: the whole request must arrive within it.
	Read time.Duration
	// Idle: a keep-alive connection with no request closes after it.
	Idle time.Duration
	// Write: each answer must be written within it (event streams
	// excepted, see writeDeadline).
	Write time.Duration
}

// DefaultTimeouts: headers within 5 seconds, a whole request within 30,
// idle keep-alive connections close after 2 minutes, answers written
// within a minute.
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 5 * time.Second, Read: 30 * time.Second, Idle: 2 * time.Minute, Write: 60 * time.Second}
}

// Listen opens addr and prepares to serve h with DefaultTimeouts. With
// certFile and keyFile it serves TLS (1.2 and newer).
func Listen(addr string, h http.Handler, certFile, keyFile string, logger *slog.Logger) (*Server, error) {
	return ListenWith(addr, h, certFile, keyFile, logger, DefaultTimeouts())
}

// ListenWith is Listen with the given timeouts (tests shorten them). There
// is no server-wide write timeout, which would cut server-sent event
// streams in stateful mode; instead each request gets a write deadline
// (writeDeadline).
func ListenWith(addr string, h http.Handler, certFile, keyFile string, logger *slog.Logger, t Timeouts) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{listener: ln, certFile: certFile, keyFile: keyFile}
	s.srv = &http.Server{
		Handler:           s.refuseWhileDraining(writeDeadline(h, t.Write)),
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}
	return s, nil
}

// refuseWhileDraining answers a request that arrives after shutdown began
// with 503, Retry-After and Connection: close, so a client retries
// elsewhere instead of waiting on a server that is going away. Requests
// already in flight are not affected: they finish writing their answers.
func (s *Server) refuseWhileDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close")
			sdkfix.WriteError(w, refusal.Unavailable.HTTPStatus(), nil, refusal.Unavailable.Error(nil))
			return
		}
		next.ServeHTTP(w, r)
	})
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

// Shutdown stops accepting connections, refuses requests that arrive from
// now on (refuseWhileDraining), and waits for requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	return s.srv.Shutdown(ctx)
}

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
