package auth

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckDataBody(t *testing.T) {
	t.Parallel()
	str := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	body := []byte(`{"url":"https://a.example/x","name":"Zoë","n":1}`)
	cases := []struct {
		name  string
		claim json.RawMessage
		body  []byte
		ok    bool
	}{
		{"exact bytes", str(string(body)), body, true},
		{"PHP escapes", str(`{"url":"https:\/\/a.example\/x","name":"Zo\u00eb","n":1}`), body, true},
		{"reordered keys", str(`{"n":1,"name":"Zoë","url":"https://a.example/x"}`), body, true},
		{"JSON value instead of a string", json.RawMessage(body), body, true},
		{"different value", str(`{"url":"https://a.example/x","name":"Zoe","n":1}`), body, false},
		{"number differs in form", str(`{"url":"https://a.example/x","name":"Zoë","n":1.0}`), body, false},
		{"extra field", str(`{"url":"https://a.example/x","name":"Zoë","n":1,"x":0}`), body, false},
		{"absent for a body", nil, body, false},
		{"trailing garbage", str(string(body) + "{}"), body, false},
		{"not JSON and not equal", str("hello"), []byte("hello!"), false},
		{"non-JSON body, exact", str("a=1&b=2"), []byte("a=1&b=2"), true},
		{"empty body, absent", nil, nil, true},
		{"empty body, json_encode([])", str("[]"), nil, true},
		{"empty body, json_encode(null)", str("null"), nil, true},
		{"empty body, json_encode(\"\")", str(`""`), nil, true},
		{"empty body, a value", str(`{"a":1}`), nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := checkDataBody(c.claim, c.body)
			require.Equal(t, c.ok, err == nil, "%v", err)
		})
	}
}

func TestCheckDataHeader(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-App", "miles")
	str := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	for claim, ok := range map[string]bool{
		`{"Content-Type":"application/json"}`:                 true,
		`{"content-type":"application/json","X-App":"miles"}`: true,
		`["Content-Type: application/json","X-App: miles"]`:   true,
		`{"Authorization":"Bearer whatever"}`:                 true,
		`[]`:                                                  true,
		`{"X-App":"other"}`:                                   false,
		`{"X-Missing":"x"}`:                                   false,
		`["no colon"]`:                                        false,
		`42`:                                                  false,
	} {
		err := checkDataHeader(str(claim), h)
		require.Equal(t, ok, err == nil, "%s: %v", claim, err)
	}
}
