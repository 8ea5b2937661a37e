package httpserver

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// safeErrors rewrites the error answers the SDK's HTTP handler writes
// itself. Their texts can echo what the client sent (`invalid Host header
// "evil.example"`, `malformed payload: <decoder error quoting the body>`,
// `unknown method "<name>"`), which is attacker text going back out and, at
// worst, a reflection channel. Every status >= 400 the SDK writes is
// replaced with a fixed text for that status; a JSON-RPC error body keeps
// its code (and, for an unsupported protocol version, the list of versions
// the server does speak, which clients need) and loses its message.
//
// The SDK's refusals (wrong method, media type, Accept header, protocol
// version, unknown session...) are counted in the audit trail's refusal
// aggregate like every other refusal before the MCP layer.
func (s *server) safeErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := &errorRewriter{ResponseWriter: w}
		next.ServeHTTP(e, r)
		if e.rewriting {
			st := state(r)
			st.refusal = "transport_" + strconv.Itoa(e.status)
			s.Audit.Refusal(st.ip.String(), st.refusal)
		}
		e.finish()
	})
}

type errorRewriter struct {
	http.ResponseWriter
	rewriting   bool
	wroteHeader bool
	status      int
	body        []byte
}

func (e *errorRewriter) WriteHeader(code int) {
	if e.wroteHeader {
		return
	}
	e.wroteHeader = true
	// The SDK sets "no-cache" on its answers; MCP results hold personal
	// data and must not be stored by any cache at all.
	e.ResponseWriter.Header().Set("Cache-Control", "no-store")
	if code < 400 {
		e.ResponseWriter.WriteHeader(code)
		return
	}
	e.rewriting, e.status = true, code
}

func (e *errorRewriter) Write(b []byte) (int, error) {
	if !e.wroteHeader {
		e.WriteHeader(http.StatusOK)
	}
	if !e.rewriting {
		return e.ResponseWriter.Write(b)
	}
	if len(e.body) < 64<<10 {
		e.body = append(e.body, b...)
	}
	return len(b), nil
}

// Flush sends an error answer once the SDK is done with it, and otherwise
// passes flushes through (server-sent events).
func (e *errorRewriter) Flush() {
	if e.rewriting {
		return
	}
	// Through the ResponseController, which follows Unwrap: the writer
	// underneath is the access log's recorder, not the connection.
	_ = http.NewResponseController(e.ResponseWriter).Flush()
}

func (e *errorRewriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// finish writes the rewritten error, if there was one.
func (e *errorRewriter) finish() {
	if !e.rewriting {
		return
	}
	h := e.ResponseWriter.Header()
	h.Del("Content-Length")
	if strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		var resp struct {
			ID    json.RawMessage `json:"id"`
			Error struct {
				Code int             `json:"code"`
				Data json.RawMessage `json:"data"`
			} `json:"error"`
		}
		if json.Unmarshal(e.body, &resp) == nil && resp.Error.Code != 0 {
			out := map[string]any{"code": resp.Error.Code, "message": rpcMessage(resp.Error.Code)}
			if resp.Error.Code == unsupportedProtocolVersion && len(resp.Error.Data) > 0 {
				out["data"] = resp.Error.Data
			}
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

// unsupportedProtocolVersion is the SDK's CodeUnsupportedProtocolVersion.
const unsupportedProtocolVersion = -32022

func rpcMessage(code int) string {
	switch code {
	case -32700:
		return "Parse error."
	case -32600:
		return "Invalid request."
	case -32601:
		return "Method not found."
	case -32602:
		return "Invalid parameters."
	case unsupportedProtocolVersion:
		return "Unsupported protocol version."
	}
	return "Request failed."
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
