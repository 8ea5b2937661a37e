package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// ProtocolVersion is the MCP protocol version every request announces, the
// one the real server's clients speak over stateless HTTP today.
const ProtocolVersion = "2025-11-25"

// Kind says what became of one call.
type Kind uint8

// The kinds of outcome. Everything but OK makes a run invalid.
const (
	OK             Kind = iota // HTTP 200 carrying a tool result without isError
	BadStatus                  // any HTTP status but 200 (401, 429, 503...)
	RPCError                   // a JSON-RPC error object
	ToolError                  // a tool result with isError: true
	Unparseable                // a body that is not one JSON-RPC response
	TransportError             // no answer: connection refused, reset, timeout
	numKinds
)

var kindNames = [numKinds]string{"ok", "bad status", "JSON-RPC error", "tool error", "unparseable", "transport error"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Outcome is one call's classified answer.
type Outcome struct {
	Kind Kind
	// Status is the HTTP status (0 without an answer).
	Status int
	// Bytes is the length of the response body.
	Bytes int
	// Detail describes a failure for a human: the status and the start of
	// the body, or the error. Empty on success (so success allocates
	// nothing for it).
	Detail string
}

// Target is the server a Caller talks to.
type Target struct {
	// URL is the Streamable HTTP endpoint, e.g. http://127.0.0.1:8080/mcp.
	URL string
	// Key is sent as "Authorization: Bearer <key>"; empty sends no
	// Authorization header (the bare server).
	Key string
}

// Caller makes tool calls to one Target over kept-alive connections. It is
// safe for concurrent use.
type Caller struct {
	url    string
	header http.Header
	client *http.Client
}

// NewCaller returns a Caller that keeps up to conns idle connections, so
// that conns concurrent clients each keep theirs between calls.
func NewCaller(t Target, conns int) *Caller {
	h := http.Header{}
	if t.Key != "" {
		h.Set("Authorization", "Bearer "+t.Key)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	h.Set("MCP-Protocol-Version", ProtocolVersion)
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // neither server compresses; this keeps the exchange plain
		ForceAttemptHTTP2:   false,
	}
	return &Caller{url: t.URL, header: h, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Close closes the Caller's idle connections.
func (c *Caller) Close() { c.client.CloseIdleConnections() }

// CallBody returns the JSON-RPC request calling get_order_status for
// orderID. Serialise each once and reuse it.
func CallBody(orderID string) []byte {
	type args struct {
		OrderID string `json:"order_id"`
	}
	type params struct {
		Name      string `json:"name"`
		Arguments args   `json:"arguments"`
	}
	b, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		ID      int    `json:"id"`
		Method  string `json:"method"`
		Params  params `json:"params"`
	}{"2.0", 1, "tools/call", params{"get_order_status", args{orderID}}})
	if err != nil {
		panic(err) // cannot happen: only strings and ints
	}
	return b
}

// Call sends one request body and classifies the answer. buf is the
// caller's reusable buffer for the response body.
func (c *Caller) Call(ctx context.Context, body []byte, buf *bytes.Buffer) Outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return Outcome{Kind: TransportError, Detail: err.Error()}
	}
	req.Header = c.header // read-only: the transport does not modify it
	resp, err := c.client.Do(req)
	if err != nil {
		return Outcome{Kind: TransportError, Detail: err.Error()}
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return Outcome{Kind: TransportError, Status: resp.StatusCode, Detail: "reading the body: " + err.Error()}
	}
	return Classify(resp.StatusCode, resp.Header.Get("Content-Type"), buf.Bytes())
}

// rpcResponse is as much of a JSON-RPC response as classification needs.
// Fields it does not name (the result's content and structuredContent) are
// skipped by the decoder without being stored.
type rpcResponse struct {
	JSONRPC string    `json:"jsonrpc"`
	Error   *rpcError `json:"error"`
	Result  *struct {
		IsError bool `json:"isError"`
	} `json:"result"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Classify decides whether one answer is a successful tool call. It accepts
// both response forms of Streamable HTTP: application/json, and a
// text/event-stream whose last event carries the response.
func Classify(status int, contentType string, body []byte) Outcome {
	out := Outcome{Status: status, Bytes: len(body)}
	if status != http.StatusOK {
		out.Kind, out.Detail = BadStatus, fmt.Sprintf("HTTP %d: %s", status, snippet(body))
		return out
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	payload := body
	if mt == "text/event-stream" {
		payload = lastEventData(body)
	}
	var r rpcResponse
	if err := json.Unmarshal(payload, &r); err != nil || r.JSONRPC != "2.0" {
		out.Kind, out.Detail = Unparseable, fmt.Sprintf("not a JSON-RPC response (%s): %s", contentType, snippet(body))
		return out
	}
	switch {
	case r.Error != nil:
		out.Kind, out.Detail = RPCError, fmt.Sprintf("JSON-RPC error %d: %s", r.Error.Code, snippet([]byte(r.Error.Message)))
	case r.Result == nil:
		out.Kind, out.Detail = Unparseable, "JSON-RPC response with neither result nor error: "+snippet(body)
	case r.Result.IsError:
		out.Kind, out.Detail = ToolError, "tool result with isError: "+toolErrorText(payload)
	}
	return out
}

// lastEventData returns the data of the last event of a server-sent event
// stream (its data lines joined by newlines), or nil.
func lastEventData(stream []byte) []byte {
	var last, cur []byte
	for line := range bytes.Lines(stream) {
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if cur != nil {
				last, cur = cur, nil
			}
		case bytes.HasPrefix(line, []byte("data:")):
			d := bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))
			if cur != nil {
				cur = append(cur, '\n')
			}
			cur = append(cur, d...)
		}
	}
	if cur != nil {
		last = cur
	}
	return last
}

// toolErrorText returns the start of a failed tool result's text, for the
// report. It decodes the content only on this failure path.
func toolErrorText(payload []byte) string {
	var r struct {
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
	}
	if json.Unmarshal(payload, &r) != nil || len(r.Result.Content) == 0 {
		return "(no text)"
	}
	return snippet([]byte(r.Result.Content[0].Text))
}

// snippet is the start of b as printable text, for a report line.
func snippet(b []byte) string {
	const limit = 160
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit]) + "..."
	}
	return s
}
