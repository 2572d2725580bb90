package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

type alert struct {
	User string `json:"user"`
	Host string `json:"host"`
}

func TestRoundTripHidesTheValue(t *testing.T) {
	k, err := NewKeyring(key(1))
	if err != nil {
		t.Fatal(err)
	}
	dc := k.DataConverter()
	in := alert{User: "alice@example.com", Host: "fin-ws-0142"}
	p, err := dc.ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Metadata[MetadataEncoding]); got != EncodingEncrypted {
		t.Fatalf("encoding %q, want %q", got, EncodingEncrypted)
	}
	if got := string(p.Metadata[MetadataKeyID]); got != k.CurrentKeyID() {
		t.Fatalf("key id %q, want %q", got, k.CurrentKeyID())
	}
	for _, plain := range []string{"alice", "fin-ws-0142", "json/plain"} {
		if bytes.Contains(p.Data, []byte(plain)) {
			t.Errorf("encrypted payload contains %q", plain)
		}
	}
	var out alert
	if err := dc.FromPayload(p, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip: %+v, want %+v", out, in)
	}
	// A fresh nonce each time: equal values do not give equal ciphertexts.
	p2, _ := dc.ToPayload(in)
	if bytes.Equal(p.Data, p2.Data) {
		t.Error("two encryptions of one value are identical")
	}
}

func TestPlainPayloadsPassThrough(t *testing.T) {
	k, _ := NewKeyring(key(1))
	plain, err := converter.GetDefaultDataConverter().ToPayload(alert{User: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	var out alert
	if err := k.DataConverter().FromPayload(plain, &out); err != nil {
		t.Fatal(err)
	}
	if out.User != "bob" {
		t.Fatalf("got %+v", out)
	}
}

func TestRotation(t *testing.T) {
	old, _ := NewKeyring(key(1))
	p, err := old.DataConverter().ToPayload("recorded under the old key")
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := NewKeyring(key(2), key(1))
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := rotated.DataConverter().FromPayload(p, &s); err != nil || s != "recorded under the old key" {
		t.Fatalf("old payload under the rotated keyring: %q, %v", s, err)
	}
	fresh, _ := rotated.DataConverter().ToPayload("new")
	if got := string(fresh.Metadata[MetadataKeyID]); got != KeyID(key(2)) {
		t.Fatalf("new payloads use key %s, want the first key %s", got, KeyID(key(2)))
	}

	// Without the old key the payload cannot be read, and the error says which key.
	newOnly, _ := NewKeyring(key(2))
	err = newOnly.DataConverter().FromPayload(p, &s)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || !strings.Contains(err.Error(), KeyID(key(1))) {
		t.Fatalf("missing key: %v, want a final error naming key %s", err, KeyID(key(1)))
	}
}

func TestTamperingIsDetected(t *testing.T) {
	k, _ := NewKeyring(key(1))
	p, _ := k.DataConverter().ToPayload("contain host")
	cases := map[string]func(*commonpb.Payload){
		"flipped bit": func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 1 },
		"truncated":   func(p *commonpb.Payload) { p.Data = p.Data[:4] },
		"empty":       func(p *commonpb.Payload) { p.Data = nil },
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			c := &commonpb.Payload{Metadata: p.Metadata, Data: bytes.Clone(p.Data)}
			tamper(c)
			var s string
			if err := k.DataConverter().FromPayload(c, &s); err == nil {
				t.Fatalf("decoded a tampered payload as %q", s)
			}
		})
	}
}

func TestFailureMessagesAreEncrypted(t *testing.T) {
	k, _ := NewKeyring(key(1))
	fc := k.FailureConverter()
	f := fc.ErrorToFailure(errors.New("user alice@example.com not found"))
	if strings.Contains(f.GetMessage(), "alice") || strings.Contains(f.GetStackTrace(), "alice") {
		t.Fatalf("failure in clear: %q", f.GetMessage())
	}
	if bytes.Contains(f.GetEncodedAttributes().GetData(), []byte("alice")) {
		t.Fatal("encoded attributes in clear")
	}
	if err := fc.FailureToError(f); !strings.Contains(err.Error(), "alice@example.com not found") {
		t.Fatalf("decoded failure: %v", err)
	}
}

func TestKeys(t *testing.T) {
	good := EncodeKey(key(7))
	for name, tc := range map[string]struct {
		text    string
		want    int
		wantErr string
	}{
		"one":                 {text: good, want: 1},
		"comma list":          {text: EncodeKey(key(1)) + ", " + good, want: 2},
		"lines with comments": {text: "# current\n" + good + "\n\n# previous\n" + EncodeKey(key(1)) + "\n", want: 2},
		"empty":               {text: "\n# nothing\n", wantErr: "no payload key"},
		"not base64":          {text: "not-base64!", wantErr: "not base64"},
		"short":               {text: EncodeKey([]byte("short")), wantErr: "is 5 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			keys, err := ParseKeys(tc.text)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(keys) != tc.want {
				t.Fatalf("%d keys, %v; want %d", len(keys), err, tc.want)
			}
		})
	}
	if _, err := NewKeyring([]byte("short")); err == nil {
		t.Error("a short key made a keyring")
	}
	if _, err := NewKeyring(); err == nil {
		t.Error("no keys made a keyring")
	}
}

func TestLoadKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "payload.key")
	if _, err := LoadKeyFile(path, false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file without create: %v", err)
	}
	// Processes starting together agree on one key.
	rings := make([]*Keyring, 8)
	var wg sync.WaitGroup
	for i := range rings {
		wg.Go(func() {
			k, err := LoadKeyFile(path, true)
			if err != nil {
				t.Error(err)
			}
			rings[i] = k
		})
	}
	wg.Wait()
	for _, k := range rings[1:] {
		if k == nil || k.CurrentKeyID() != rings[0].CurrentKeyID() {
			t.Fatal("concurrent creators ended up with different keys")
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	again, err := LoadKeyFile(path, true)
	if err != nil || again.CurrentKeyID() != rings[0].CurrentKeyID() {
		t.Fatalf("reload: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("left temporary files: %v", entries)
	}
}

// benchmarkConvert round-trips the example CrowdStrike detection (2.3 KB) through a
// converter, as a workflow input is: encoded by the starter, decoded by the worker.
func benchmarkConvert(b *testing.B, dc converter.DataConverter) {
	raw, err := os.ReadFile("../../../../examples/alerts/crowdstrike-ransomware.json")
	if err != nil {
		b.Fatal(err)
	}
	var alert map[string]any
	if err := json.Unmarshal(raw, &alert); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := dc.ToPayload(alert)
		if err != nil {
			b.Fatal(err)
		}
		var out map[string]any
		if err := dc.FromPayload(p, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConvertBaseline is the SDK's default (JSON) converter alone.
func BenchmarkConvertBaseline(b *testing.B) {
	benchmarkConvert(b, converter.GetDefaultDataConverter())
}

// BenchmarkConvertEncrypted adds AES-256-GCM, as every Rampart payload has.
func BenchmarkConvertEncrypted(b *testing.B) {
	k, err := NewKeyring(key(1))
	if err != nil {
		b.Fatal(err)
	}
	benchmarkConvert(b, k.DataConverter())
}
