package sdkfix

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/example/order-mcp/internal/refusal"
)

// Workaround: the go-sdk's own error answers quote the request.
//
// Requests that fail before the MCP layer's gate sees them (an unknown
// method, params that do not decode) are answered by the SDK itself, with
// messages that quote what the client sent: `JSON RPC not handled:
// "<method>" unsupported`, `handling 'ping': unmarshaling params: json:
// cannot unmarshal ... into Go value of type mcp.PingParams`, sometimes
// with code 0. See https://github.com/modelcontextprotocol/go-sdk/issues/976
// (codes and unanswered requests, fixed upstream in part by
// https://github.com/modelcontextprotocol/go-sdk/pull/1087); the texts still
// carry the input as of v1.8.0. Attacker text going back out is a
// reflection channel into a model's context, so every such error leaves
// this server with the catalogue's fixed text for its code
// (internal/refusal), over stdio (SafeWriter) and HTTP (HTTPErrors).

// SafeWriter wraps the output of a stdio transport (one JSON-RPC message
// per line) so that error responses the SDK writes on its own carry fixed
// texts. Messages the gate wrote itself, and the application's refusal
// codes, pass unchanged.
func SafeWriter(w io.WriteCloser) io.WriteCloser { return &safeWriter{w: w} }

type safeWriter struct {
	mu  sync.Mutex
	w   io.WriteCloser
	buf []byte
}

func (s *safeWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := s.buf[:i+1]
		if _, err := s.w.Write(safeLine(line)); err != nil {
			return 0, err
		}
		s.buf = s.buf[i+1:]
	}
}

func (s *safeWriter) Close() error { return s.w.Close() }

// safeLine rewrites one outgoing line if it holds error responses.
func safeLine(line []byte) []byte {
	out, changed := PublicErrorJSON(bytes.TrimSpace(line))
	if !changed {
		return line
	}
	return append(out, '\n')
}

// PublicErrorJSON rewrites the JSON-RPC error responses in one JSON text (a
// message, or a batch of them) so that their messages are fixed texts, and
// reports whether it changed anything. Errors the server wrote itself are
// kept. The HTTP layer applies it to response bodies and event streams,
// and SafeWriter to stdio lines.
func PublicErrorJSON(msg []byte) ([]byte, bool) {
	if !bytes.Contains(msg, []byte(`"error"`)) {
		return msg, false // the common case: results and requests pass untouched
	}
	if t := bytes.TrimLeft(msg, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(t, &batch); err != nil {
			return msg, false
		}
		changed := false
		for i, m := range batch {
			if out, ok := publicErrorMessage(m); ok {
				batch[i], changed = out, true
			}
		}
		if !changed {
			return msg, false
		}
		out, err := json.Marshal(batch)
		if err != nil {
			return msg, false
		}
		return out, true
	}
	return publicErrorMessage(msg)
}

func publicErrorMessage(raw []byte) ([]byte, bool) {
	msg, err := jsonrpc.DecodeMessage(raw)
	if err != nil {
		return raw, false
	}
	resp, ok := msg.(*jsonrpc.Response)
	if !ok || resp.Error == nil {
		return raw, false
	}
	public := publicWireError(resp.Error)
	if public.Message == resp.Error.Error() {
		return raw, false // already a fixed text of ours
	}
	safe := *resp
	safe.Error = public
	out, err := jsonrpc.EncodeMessage(&safe)
	if err != nil {
		return raw, false
	}
	return out, true
}

// publicWireError returns err as a wire error whose message is safe to
// send: the server's own unchanged, anyone else's replaced by the fixed
// text for its code.
func publicWireError(err error) *jsonrpc.Error {
	we := &jsonrpc.Error{Message: err.Error()}
	var wrapped *jsonrpc.Error
	if errors.As(err, &wrapped) {
		we.Code, we.Data = wrapped.Code, wrapped.Data
	}
	if Ours(we) {
		return we
	}
	return FixedError(we.Code, we.Data)
}

// Ours reports whether a wire error was worded by this server: one of the
// application's refusal codes, or a text from the catalogue.
func Ours(we *jsonrpc.Error) bool {
	switch we.Code {
	case refusal.CodeUnauthenticated, refusal.CodeForbidden, refusal.CodeRateLimited, refusal.CodeUnavailable:
		return true
	}
	for _, k := range []refusal.Kind{refusal.UnknownTool, refusal.MethodNotFound, refusal.InvalidParams} {
		if we.Code == k.Code() && we.Message == k.Message() {
			return true
		}
	}
	return we.Code == refusal.Internal.Code() && strings.HasPrefix(we.Message, "Internal error, reference ")
}

// FixedError is the error a client sees for a JSON-RPC error the server
// did not word itself: the catalogue's code and text for it, and of the
// data only what the specification requires and the server controls.
func FixedError(code int64, data json.RawMessage) *jsonrpc.Error {
	k := refusal.ByCode(code)
	out := &jsonrpc.Error{Code: k.Code(), Message: k.Message()}
	switch k {
	case refusal.UnsupportedVersion:
		out.Data = SupportedVersionsOnly(data)
	case refusal.RequestFailed:
		// An unknown code keeps its number and loses its text, unless it
		// lies in the block MCP 2026-07-28 reserves for the codes the
		// specification defines, from which nothing else may be sent.
		if code < -32099 || code > -32020 {
			out.Code = code
		}
	}
	return out
}

// SupportedVersionsOnly keeps, of an unsupported-protocol-version error's
// data, the versions this server speaks (clients need them to retry) and
// the version the client asked for, which the specification says the
// error echoes, only when that is a short token of a safe alphabet: it is
// the client's own text, and anything else could carry a message.
func SupportedVersionsOnly(data json.RawMessage) json.RawMessage {
	var in struct {
		Supported []string `json:"supported"`
		Requested string   `json:"requested"`
	}
	if json.Unmarshal(data, &in) != nil || len(in.Supported) == 0 {
		return nil
	}
	out := struct {
		Supported []string `json:"supported"`
		Requested string   `json:"requested,omitempty"`
	}{Supported: in.Supported}
	if versionToken(in.Requested) {
		out.Requested = in.Requested
	}
	b, _ := json.Marshal(out)
	return b
}

// versionToken reports whether s may be echoed as a requested protocol
// version: 1 to 32 characters of letters, digits, '.', '-' and '_'.
func versionToken(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
