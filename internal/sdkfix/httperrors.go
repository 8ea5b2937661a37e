package sdkfix

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/example/order-mcp/internal/refusal"
)

// Workaround: the go-sdk's Streamable HTTP handler words its own error
// answers, and they can echo what the client sent (`invalid Host header
// "evil.example"`, `malformed payload: <decoder error quoting the body>`,
// `unknown method "<name>"`, `invalid params: unmarshaling "<raw
// params>"`): attacker text going back out, and at worst a reflection
// channel. See https://github.com/modelcontextprotocol/go-sdk/issues/976.
//
//   - Every status >= 400 the SDK writes is replaced with the catalogue's
//     fixed text for that status; a JSON-RPC error body keeps its code
//     (and, for an unsupported protocol version, the data the
//     specification requires) and loses its message.
//   - JSON-RPC errors inside successful answers (a JSON body, or the data
//     lines of an event stream) get fixed texts too (PublicErrorJSON);
//     errors the MCP layer wrote itself pass.
//   - A refusal the MCP layer made with a status of its own in the
//     catalogue (a rate limit, an unavailable dependency) leaves with that
//     status and Retry-After, read from the error's retry_after_seconds.
//   - An answer the SDK never wrote (a request cut off by shutdown)
//     becomes a 503 with Retry-After, never an empty 200.

// Rewrite says what HTTPErrors did to one answer, for the refusal
// aggregate: the catalogue kind of an error answer the SDK wrote itself,
// or InAnswer for JSON-RPC errors inside a successful answer.
type Rewrite struct {
	Kind     refusal.Kind
	InAnswer bool
}

// Reason is the name the refusal aggregate records.
func (rw Rewrite) Reason() string {
	if rw.InAnswer {
		return "protocol_error"
	}
	return rw.Kind.Name()
}

// HTTPErrors wraps the SDK's Streamable HTTP handler. maxRequestBody is the
// request body cap (an error answer echoing a request can approach its
// size); rewritten, when not nil, is told about every answer it changed.
func HTTPErrors(next http.Handler, maxRequestBody int64, rewritten func(*http.Request, Rewrite)) http.Handler {
	limit := max(minBuffered, 2*int(maxRequestBody)+64<<10)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := &errorRewriter{ResponseWriter: w, maxBuffered: limit}
		next.ServeHTTP(e, r)
		e.finish(r)
		if rewritten != nil && (e.mode == modeError || e.rewrote) {
			rewritten(r, Rewrite{Kind: e.kind, InAnswer: e.mode != modeError})
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

type errorRewriter struct {
	http.ResponseWriter
	wroteHeader bool
	mode        int
	status      int
	body        []byte // modeError, modeJSON
	line        []byte // modeSSE: the incomplete last line
	rewrote     bool
	kind        refusal.Kind // what was rewritten
	maxBuffered int          // modeJSON: the most held before the answer passes untouched
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
	out, changed := PublicErrorJSON(bytes.TrimSpace(data))
	if !changed {
		return line
	}
	e.rewrote, e.kind = true, refusal.RequestFailed
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
func (e *errorRewriter) finish(r *http.Request) {
	if !e.wroteHeader && r.Method == http.MethodPost {
		// The SDK returned without answering: the request was cut off
		// (its session closed under it at shutdown). An empty 200 would
		// read as success; say it failed and when to retry.
		e.mode, e.kind = modeError, refusal.Unavailable
		e.ResponseWriter.Header().Set("Retry-After", "1")
		WriteError(e.ResponseWriter, refusal.Unavailable.HTTPStatus(), nil, refusal.Unavailable.Error(nil))
		return
	}
	switch e.mode {
	case modeSSE:
		if len(e.line) > 0 {
			_, _ = e.ResponseWriter.Write(e.sseLine(e.line))
		}
	case modeJSON:
		out, changed := PublicErrorJSON(e.body)
		if changed {
			e.rewrote, e.kind = true, refusal.RequestFailed
		}
		status := e.status
		if code, retry := refusalStatus(out); code != 0 {
			status = code
			e.ResponseWriter.Header().Set("Retry-After", strconv.Itoa(retry))
		}
		e.ResponseWriter.Header().Del("Content-Length")
		e.ResponseWriter.WriteHeader(status)
		_, _ = e.ResponseWriter.Write(out)
	case modeError:
		e.writeError()
	}
}

// refusalStatus returns the HTTP status and Retry-After seconds of a
// single JSON-RPC error answer that is a rate limit or an unavailable
// dependency, decided inside the MCP layer; 0 otherwise.
func refusalStatus(body []byte) (status, retryAfter int) {
	if !bytes.Contains(body, []byte(`"error"`)) {
		return 0, 0
	}
	var resp struct {
		Error *struct {
			Code int64 `json:"code"`
			Data struct {
				RetryAfter int `json:"retry_after_seconds"`
			} `json:"data"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &resp) != nil || resp.Error == nil {
		return 0, 0
	}
	for _, k := range []refusal.Kind{refusal.RateLimited, refusal.Unavailable} {
		if resp.Error.Code == k.Code() {
			return k.HTTPStatus(), max(1, resp.Error.Data.RetryAfter)
		}
	}
	return 0, 0
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
			e.kind = refusal.ByCode(resp.Error.Code)
			WriteError(e.ResponseWriter, e.status, resp.ID, FixedError(resp.Error.Code, resp.Error.Data))
			return
		}
	}
	e.kind = refusal.ByHTTPStatus(e.status)
	WriteError(e.ResponseWriter, e.status, nil, e.kind.Error(nil))
}

// WriteError writes a JSON-RPC error answer with an HTTP status, which MCP
// clients (the go-sdk among them) read and surface to the user. Its text
// must be the server's own.
func WriteError(w http.ResponseWriter, status int, id json.RawMessage, rpcErr any) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": rpcErr})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
