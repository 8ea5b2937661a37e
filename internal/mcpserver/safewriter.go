package mcpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// SafeWriter wraps the output of a stdio transport (one JSON-RPC message
// per line) so that error responses the SDK writes on its own carry fixed
// texts. Requests that fail before the gate sees them (an unknown method,
// params that do not decode) are answered by the SDK with messages that
// quote the request (`method not found: "<name>"`, `invalid params:
// unmarshaling "<raw params>"`); over HTTP the same answers are rewritten
// by the HTTP layer, and this does it for stdio. Messages this package
// wrote itself, and our own refusal codes, pass unchanged.
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
// reports whether it changed anything. Errors this package wrote itself are
// kept. The HTTP layer applies it to response bodies and event streams, and
// SafeWriter to stdio lines.
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

// Fixed texts of the errors this package writes itself.
const (
	msgUnknownTool     = "Unknown tool. Call tools/list to see the tools this credential may use."
	msgMethodNotHere   = "Method not available on this server."
	msgInvalidParams   = "Invalid parameters."
	msgInternalPrefix  = "Internal error, reference "
	// The MCP specification's own codes (the go-sdk's mcp.Code*).
	headerMismatch         = -32020
	missingCapabilities    = -32021
	unsupportedVersion     = -32022
	urlElicitationRequired = -32042
)

// publicWireError returns err as a wire error whose message is safe to
// send: ours unchanged, anyone else's replaced by a fixed text for its code.
func publicWireError(err error) *jsonrpc.Error {
	we := &jsonrpc.Error{Message: err.Error()}
	var wrapped *jsonrpc.Error
	if errors.As(err, &wrapped) {
		we.Code, we.Data = wrapped.Code, wrapped.Data
	}
	switch {
	case we.Code == CodeUnauthenticated || we.Code == CodeForbidden || we.Code == CodeRateLimited || we.Code == CodeUnavailable:
		return we // ours: fixed texts
	case we.Message == msgUnknownTool || we.Message == msgMethodNotHere || we.Message == msgInvalidParams:
		return we
	case we.Code == jsonrpc.CodeInternalError && strings.HasPrefix(we.Message, msgInternalPrefix):
		return we
	}
	return FixedError(we.Code, we.Data)
}

// FixedError is the one table of client-facing texts for JSON-RPC errors
// this server did not word itself (the SDK's, whose texts can echo input):
// a fixed text per code, and of the data only the versions the server
// speaks. Every transport uses it: the stdio writer, and the HTTP error
// rewriter for answers of any status.
func FixedError(code int64, data json.RawMessage) *jsonrpc.Error {
	out := &jsonrpc.Error{Code: code}
	switch code {
	case 0: // errors the SDK returns without a code (calls before initialize...)
		out.Code, out.Message = jsonrpc.CodeInvalidRequest, "Invalid request."
	case jsonrpc.CodeParseError:
		out.Message = "Parse error: send one JSON-RPC message at a time."
	case jsonrpc.CodeInvalidRequest:
		out.Message = "Invalid request."
	case jsonrpc.CodeMethodNotFound:
		out.Message = msgMethodNotHere
	case jsonrpc.CodeInvalidParams:
		out.Message = msgInvalidParams
	case jsonrpc.CodeInternalError:
		out.Message = "Internal error."
	case unsupportedVersion:
		out.Message, out.Data = "Unsupported protocol version.", SupportedVersionsOnly(data)
	case headerMismatch:
		out.Message = "Header mismatch: the MCP request headers must agree with the request body."
	case missingCapabilities:
		out.Message = "This request needs a client capability the client did not declare."
	case urlElicitationRequired:
		// The server never asks for URL elicitation, and a 2026-07-28 client
		// must never receive this code: whatever produced it, it is a bug.
		out.Code, out.Message = jsonrpc.CodeInternalError, "Internal error."
	default:
		out.Message = "Request failed."
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
