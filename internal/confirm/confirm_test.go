package confirm_test

//lint:file-ignore SA1019 an answer of a deprecated kind (roots) is one of the malformed answers a hostile client may send

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/confirm"
)

var secret = []byte("a confirmation secret of at least thirty-two bytes")

type args struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason,omitempty"`
}

func binding(t *testing.T, subject, customer, orderID string) confirm.Binding {
	t.Helper()
	d, err := confirm.Digest(args{OrderID: orderID})
	if err != nil {
		t.Fatal(err)
	}
	return confirm.Binding{Subject: subject, Customer: customer, Tool: "cancel_order", Arguments: d}
}

// TestAStateOpensOnlyForItsOwnCall seals a state and tries to open it for
// every other call: each refusal is the kind the client is told, with the
// precise reason for the audit trail.
func TestAStateOpensOnlyForItsOwnCall(t *testing.T) {
	now := time.Now()
	s, err := confirm.NewSealer(secret, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	own := binding(t, "apikey:abc", "cus_1", "ord_1")
	sealed, issued, err := s.Issue(own)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OwnCallOpens", func(t *testing.T) {
		st, err := s.Open(sealed, own)
		if err != nil || st.Nonce != issued.Nonce || len(st.Nonce) != 22 || !st.Expires.Equal(issued.Expires) {
			t.Fatalf("got %+v, %v", st, err)
		}
	})
	t.Run("NoncesAreFresh", func(t *testing.T) {
		_, again, _ := s.Issue(own)
		if again.Nonce == issued.Nonce {
			t.Fatal("two states with one nonce")
		}
	})
	t.Run("TheStateRevealsNothing", func(t *testing.T) {
		for _, v := range []string{"apikey:abc", "cus_1", "cancel_order", issued.Nonce} {
			if strings.Contains(sealed, v) {
				t.Fatalf("the sealed state shows %q", v)
			}
		}
	})
	other := func(f func(*confirm.Binding)) confirm.Binding { b := own; f(&b); return b }
	for _, tt := range []struct {
		name   string
		want   confirm.Binding
		reason string
	}{
		{"AnotherCaller", other(func(b *confirm.Binding) { b.Subject = "apikey:xyz" }), "issued to another caller"},
		{"AnotherCustomer", other(func(b *confirm.Binding) { b.Customer = "cus_2" }), "issued for another customer binding"},
		{"Staff", other(func(b *confirm.Binding) { b.Customer = "" }), "issued for another customer binding"},
		{"AnotherTool", other(func(b *confirm.Binding) { b.Tool = "refund_order" }), "issued for another tool"},
		{"OtherArguments", binding(t, "apikey:abc", "cus_1", "ord_2"), "issued for other arguments"},
	} {
		t.Run(tt.name+"IsRefused", func(t *testing.T) {
			_, err := s.Open(sealed, tt.want)
			var ce *confirm.Error
			if !errors.Is(err, confirm.ErrInvalid) || !errors.As(err, &ce) || ce.Reason != tt.reason {
				t.Fatalf("got %v, want ErrInvalid: %s", err, tt.reason)
			}
		})
	}
	t.Run("AnotherSecretCannotOpenIt", func(t *testing.T) {
		o, _ := confirm.NewSealer([]byte("another secret, also thirty-two bytes long"), nil)
		if _, err := o.Open(sealed, own); !errors.Is(err, confirm.ErrInvalid) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("EveryAlteredByteIsRefused", func(t *testing.T) {
		for i := len("v1."); i < len(sealed); i++ {
			b := []byte(sealed)
			b[i] ^= 0x01
			if _, err := s.Open(string(b), own); err == nil {
				t.Fatalf("altering byte %d went unnoticed", i)
			}
		}
	})
	t.Run("ExpiredIsRefused", func(t *testing.T) {
		later := now.Add(confirm.TTL + time.Second)
		s2, _ := confirm.NewSealer(secret, func() time.Time { return later })
		if _, err := s2.Open(sealed, own); !errors.Is(err, confirm.ErrExpired) {
			t.Fatalf("got %v, want ErrExpired", err)
		}
		inTime := now.Add(confirm.TTL - 2*time.Second)
		s3, _ := confirm.NewSealer(secret, func() time.Time { return inTime })
		if _, err := s3.Open(sealed, own); err != nil {
			t.Fatalf("answered in time: %v", err)
		}
	})
	t.Run("ShortSecretIsRefused", func(t *testing.T) {
		if _, err := confirm.NewSealer([]byte("short"), nil); err == nil {
			t.Fatal("a 5-byte secret was accepted")
		}
	})
}

// TestDigestIsCanonical: the same arguments always give the same digest,
// other arguments another.
func TestDigestIsCanonical(t *testing.T) {
	a, _ := confirm.Digest(args{OrderID: "ord_1"})
	b, _ := confirm.Digest(args{OrderID: "ord_1"})
	c, _ := confirm.Digest(args{OrderID: "ord_1", Reason: "duplicate_order"})
	if a != b || a == c {
		t.Fatal("digest is not a function of the arguments alone")
	}
}

// TestAnswersAreReadStrictly: only an exact "accept" with confirm true is
// a yes; declining in any form is a no; anything else is refused.
func TestAnswersAreReadStrictly(t *testing.T) {
	one := func(r mcp.InputResponse) mcp.InputResponseMap { return mcp.InputResponseMap{confirm.RequestID: r} }
	for _, tt := range []struct {
		name      string
		responses mcp.InputResponseMap
		want      confirm.Answer
	}{
		{"AcceptWithConfirm", one(&mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}), confirm.Accept},
		{"AcceptUnticked", one(&mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": false}}), confirm.Decline},
		{"Decline", one(&mcp.ElicitResult{Action: "decline"}), confirm.Decline},
		{"Dismiss", one(&mcp.ElicitResult{Action: "cancel"}), confirm.Dismiss},
		{"AcceptWithoutContent", one(&mcp.ElicitResult{Action: "accept"}), ""},
		{"ConfirmNotABoolean", one(&mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": 1}}), ""},
		{"ExtraContent", one(&mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true, "x": 1}}), ""},
		{"UnknownAction", one(&mcp.ElicitResult{Action: "yes"}), ""},
		{"Nothing", nil, ""},
		{"WrongID", mcp.InputResponseMap{"other": &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}}, ""},
		{"WrongKind", one(&mcp.ListRootsResult{}), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := confirm.ReadAnswer(tt.responses)
			if tt.want == "" {
				if !errors.Is(err, confirm.ErrInvalid) {
					t.Fatalf("got %q, %v; want ErrInvalid", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestQuestionIsOneRequiredBoolean: the form asks for one boolean and
// nothing else (in particular nothing a user could type a secret into).
func TestQuestionIsOneRequiredBoolean(t *testing.T) {
	q := confirm.Question("Cancel order ord_1?", "Cancel order ord_1")
	p, ok := q[confirm.RequestID].(*mcp.ElicitParams)
	if !ok || len(q) != 1 || p.Mode != "form" || p.Message != "Cancel order ord_1?" {
		t.Fatalf("question %+v", q)
	}
	if p.URL != "" {
		t.Fatal("a form question with a URL")
	}
}

func TestParsePolicy(t *testing.T) {
	for _, s := range []string{"required", "if-supported", "off"} {
		if p, err := confirm.ParsePolicy(s); err != nil || string(p) != s {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if _, err := confirm.ParsePolicy("Required"); err == nil {
		t.Fatal("a misspelt policy was accepted")
	}
}
