package httpserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/example/order-mcp/internal/mcpserver"
	"github.com/example/order-mcp/internal/security"
)

// safeErrors rewrites the error answers the SDK's HTTP handler writes
// itself. Their texts can echo what the client sent (`invalid Host header
// "evil.example"`, `malformed payload: <decoder error quoting the body>`,
// `unknown method "<name>"`, `invalid params: unmarshaling "<raw params>"`),
// which is attacker text going back out and, at worst, a reflection channel.
//
//   - Every status >= 400 the SDK writes is replaced with a fixed text for
//     that status; a JSON-RPC error body keeps its code (and, for an
//     unsupported protocol version, the versions the server does speak,
//     which clients need) and loses its message.
//   - JSON-RPC errors inside successful answers (a JSON body, or the data
//     lines of an event stream) get fixed texts too
//     (mcpserver.PublicErrorJSON); errors the MCP layer wrote itself pass.
//
// These refusals are counted in the audit trail's refusal aggregate like
// every other refusal before the MCP layer.
func (s *server) safeErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := &errorRewriter{ResponseWriter: w, maxBuffered: s.bufferLimit()}
		next.ServeHTTP(e, r)
		e.finish()
		if e.mode == modeError || e.rewrote {
			st := state(r)
			st.refusal = "transport_" + strconv.Itoa(e.status)
			if e.mode != modeError {
				st.refusal = "protocol_error"
			}
			s.Audit.Refusal(security.AddressKey(st.ip), st.subject(), st.refusal)
		}
	})
}

// What the rewriter does with an answer, decided when its header is written.
const (
	modePass  = iota // headers and body pass through
	modeError        // status >= 400: the body is replaced
	modeJSON         // a JSON body: buffered, its errors rewritten
	modeSSE          // an event stream: data lines rewritten as they pass
)

// minBuffered is the least a JSON answer may grow to and still be held
// and rewritten; a larger one passes untouched. Tool results are a few
// kilobytes; an error answer echoing the request can approach the request's
// own size, so the real bound (bufferLimit) is at least twice the body cap.
const minBuffered = 4 << 20

// bufferLimit is how much of a JSON answer safeErrors holds to rewrite it.
func (s *server) bufferLimit() int {
	return max(minBuffered, 2*int(s.Config.MaxBodyBytes)+64<<10)
}

type errorRewriter struct {
	http.ResponseWriter
	wroteHeader bool
	mode        int
	status      int
	body        []byte // modeError, modeJSON
	line        []byte // modeSSE: the incomplete last line
	rewrote     bool
	maxBuffered int // modeJSON: the most held before the answer passes untouched
}

func (e *errorRewriter) WriteHeader(code int) {
	if e.wroteHeader {
		return
	}
	e.wroteHeader = true
	e.status = code
	h := e.ResponseWriter.Header()
	// The SDK sets "no-cache" on its answers; MCP results hold personal
	// data and must not be stored by any cache at all.
	h.Set("Cache-Control", "no-store")
	ct := h.Get("Content-Type")
	switch {
	case code >= 400:
		e.mode = modeError
		return
	case strings.HasPrefix(ct, "application/json"):
		e.mode = modeJSON
		return
	case strings.HasPrefix(ct, "text/event-stream"):
		e.mode = modeSSE
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *errorRewriter) Write(b []byte) (int, error) {
	if !e.wroteHeader {
		e.WriteHeader(http.StatusOK)
	}
	switch e.mode {
	case modeError:
		if len(e.body) < 64<<10 {
			e.body = append(e.body, b...)
		}
		return len(b), nil
	case modeJSON:
		if len(e.body)+len(b) > e.maxBuffered {
			e.mode = modePass // too large to be an error answer: stop holding it
			e.ResponseWriter.WriteHeader(e.status)
			if _, err := e.ResponseWriter.Write(e.body); err != nil {
				return 0, err
			}
			e.body = nil
			return e.ResponseWriter.Write(b)
		}
		e.body = append(e.body, b...)
		return len(b), nil
	case modeSSE:
		e.line = append(e.line, b...)
		for {
			i := bytes.IndexByte(e.line, '\n')
			if i < 0 {
				return len(b), nil
			}
			if _, err := e.ResponseWriter.Write(e.sseLine(e.line[:i+1])); err != nil {
				return 0, err
			}
			e.line = e.line[i+1:]
		}
	}
	return e.ResponseWriter.Write(b)
}

// sseLine rewrites the JSON of one "data:" line of an event stream.
func (e *errorRewriter) sseLine(line []byte) []byte {
	data, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		return line
	}
	out, changed := mcpserver.PublicErrorJSON(bytes.TrimSpace(data))
	if !changed {
		return line
	}
	e.rewrote = true
	return append(append([]byte("data: "), out...), '\n')
}

// Flush passes flushes through (event streams), but holds a body that is
// still being buffered.
func (e *errorRewriter) Flush() {
	if e.mode == modeError || e.mode == modeJSON {
		return
	}
	// Through the ResponseController, which follows Unwrap: the writer
	// underneath is the access log's recorder, not the connection.
	_ = http.NewResponseController(e.ResponseWriter).Flush()
}

func (e *errorRewriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// finish writes what was held back.
func (e *errorRewriter) finish() {
	switch e.mode {
	case modeSSE:
		if len(e.line) > 0 {
			_, _ = e.ResponseWriter.Write(e.sseLine(e.line))
		}
	case modeJSON:
		out, changed := mcpserver.PublicErrorJSON(e.body)
		e.rewrote = changed
		e.ResponseWriter.Header().Del("Content-Length")
		e.ResponseWriter.WriteHeader(e.status)
		_, _ = e.ResponseWriter.Write(out)
	case modeError:
		e.writeError()
	}
}

// writeError replaces the body of a status >= 400 answer.
func (e *errorRewriter) writeError() {
	h := e.ResponseWriter.Header()
	h.Del("Content-Length")
	if strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		var resp struct {
			ID    json.RawMessage `json:"id"`
			Error struct {
				Code int64           `json:"code"`
				Data json.RawMessage `json:"data"`
			} `json:"error"`
		}
		if json.Unmarshal(e.body, &resp) == nil && resp.Error.Code != 0 {
			out := mcpserver.FixedError(resp.Error.Code, resp.Error.Data)
			id := resp.ID
			if len(id) == 0 {
				id = json.RawMessage("null")
			}
			body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": out})
			e.ResponseWriter.WriteHeader(e.status)
			_, _ = e.ResponseWriter.Write(body)
			return
		}
	}
	writeRPCError(e.ResponseWriter, e.status, -32600, statusMessage(e.status))
}

func statusMessage(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "Bad request: send one JSON-RPC request with Content-Type application/json and Accept application/json, text/event-stream."
	case http.StatusForbidden:
		return "Forbidden."
	case http.StatusNotFound:
		return "Not found: unknown or expired session."
	case http.StatusMethodNotAllowed:
		return "Method not allowed."
	case http.StatusNotAcceptable:
		return "Not acceptable: Accept must allow application/json and text/event-stream."
	case http.StatusRequestEntityTooLarge:
		return "Request body too large."
	case http.StatusUnsupportedMediaType:
		return "Content-Type must be application/json."
	}
	return "Request failed."
}
