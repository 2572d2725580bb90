package server_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rampart-soar/rampart/server"
	"github.com/rampart-soar/rampart/store/storetest"
)

// upperCodec "encrypts" by upper-casing the data and refuses data that says
// "broken", enough to see the protocol carried through.
type upperCodec struct{}

func (upperCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		out[i] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("upper")}, Data: bytes.ToUpper(p.GetData())}
	}
	return out, nil
}

func (upperCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		if bytes.Contains(p.GetData(), []byte("BROKEN")) {
			// As the real codec refuses: an application error, so a worker does not retry.
			return nil, temporal.NewNonRetryableApplicationError("payload encrypted with key 0011 does not decrypt", "PayloadUndecryptable", nil)
		}
		out[i] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: bytes.ToLower(p.GetData())}
	}
	return out, nil
}

func TestCodecEndpoint(t *testing.T) {
	st := storetest.SQLite(t)
	var logs bytes.Buffer
	tokens, err := server.NewAPITokens(map[string]string{"ana": anaToken})
	if err != nil {
		t.Fatal(err)
	}
	h := newServerFrom(t, starter{}, server.Options{Alerts: st, Codec: upperCodec{}, Tokens: tokens,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	auth := map[string]string{"Authorization": "Bearer " + anaToken, "Content-Type": "application/json"}
	payloads := func(data ...string) []byte {
		var ps commonpb.Payloads
		for _, d := range data {
			ps.Payloads = append(ps.Payloads, &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(d)})
		}
		b, _ := protojson.Marshal(&ps)
		return b
	}
	post := func(path string, body []byte, header map[string]string) (int, []byte) {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes()
	}

	code, body := post("/api/v1/codec/encode", payloads(`"fin-ws-0142"`, `{"user":"dana"}`), auth)
	var encoded commonpb.Payloads
	if code != 200 || protojson.Unmarshal(body, &encoded) != nil || len(encoded.Payloads) != 2 ||
		string(encoded.Payloads[0].Data) != `"FIN-WS-0142"` {
		t.Fatalf("encode: %d %s", code, body)
	}
	code, body = post("/api/v1/codec/decode", body, auth)
	var decoded commonpb.Payloads
	if code != 200 || protojson.Unmarshal(body, &decoded) != nil || string(decoded.Payloads[1].Data) != `{"user":"dana"}` {
		t.Fatalf("decode: %d %s", code, body)
	}
	for _, c := range []struct {
		path   string
		body   []byte
		header map[string]string
		status int
		code   string
	}{
		{"/api/v1/codec/decode", payloads("x"), map[string]string{"Content-Type": "application/json"}, 401, "unauthorized"},
		{"/api/v1/codec/rot13", payloads("x"), auth, 404, "not_found"},
		{"/api/v1/codec/decode", payloads("x"), map[string]string{"Authorization": auth["Authorization"], "Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"/api/v1/codec/decode", []byte(`{"payloads": 7}`), auth, 400, "invalid_body"},
		{"/api/v1/codec/decode", payloads("BROKEN"), auth, 400, "codec_failed"},
		{"/api/v1/codec/decode", bytes.Repeat([]byte(" "), 16<<20+1), auth, 413, "body_too_large"},
	} {
		code, body := post(c.path, c.body, c.header)
		if code != c.status || !strings.Contains(string(body), `"code":"`+c.code+`"`) {
			t.Errorf("POST %s: %d %.200s, want %d %s", c.path, code, body, c.status, c.code)
		}
	}
	if _, body := post("/api/v1/codec/decode", payloads("BROKEN"), auth); !strings.Contains(string(body), `"message":"payload encrypted with key 0011 does not decrypt"}`) {
		t.Errorf("a refusal says what the codec said: %s", body)
	}
	// Reading a history through the codec is not a change to audit.
	if strings.Contains(logs.String(), `msg="api change" method=POST path=/api/v1/codec`) {
		t.Errorf("codec calls logged as changes:\n%s", logs.String())
	}

	// A server without payload keys has no codec.
	none := newServerFrom(t, starter{}, server.Options{Alerts: st})
	req := httptest.NewRequest(http.MethodPost, "/api/v1/codec/decode", bytes.NewReader(payloads("x")))
	req.Host = "127.0.0.1:8080"
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	none.ServeHTTP(rec, req)
	if rec.Code != 404 {
		t.Fatalf("no codec: %d %s", rec.Code, rec.Body)
	}
}
