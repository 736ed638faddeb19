package webhook_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/webhook"
)

// TestSignMatchesTheSpecificationVector: the example of the Standard
// Webhooks reference libraries.
func TestSignMatchesTheSpecificationVector(t *testing.T) {
	t.Parallel()
	key, err := webhook.DecodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	require.NoError(t, err)
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	got := webhook.Sign([][]byte{key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)
	require.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", got)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	other := webhook.EncodeSecret([]byte("0123456789abcdef0123456789abcdef"))
	key, _ := webhook.DecodeSecret(secret)
	otherKey, _ := webhook.DecodeSecret(other)
	now := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	both := webhook.Sign([][]byte{otherKey, key}, "msg_1", now, body)
	single := webhook.Sign([][]byte{key}, "msg_1", now, body)

	cases := []struct {
		name, secret, ts, sig string
		body                  string
		at                    time.Time
		err                   error
	}{
		{"valid", secret, "1614265330", webhook.Sign([][]byte{key}, "msg_1", now, body), string(body), now, nil},
		{"either of two signatures", secret, "1614265330", both, string(body), now, nil},
		{"the other of two", other, "1614265330", both, string(body), now, nil},
		{"another body", secret, "1614265330", both, `{"test": 1}`, now, webhook.ErrNoMatchingSignature},
		{"another secret", webhook.EncodeSecret(make([]byte, 32)), "1614265330", both, string(body), now, webhook.ErrNoMatchingSignature},
		{"unknown version only", secret, "1614265330", "v2," + single[3:], string(body), now, webhook.ErrNoMatchingSignature},
		{"too old", secret, "1614265330", both, string(body), now.Add(6 * time.Minute), webhook.ErrTimestampTolerance},
		{"from the future", secret, "1614265330", both, string(body), now.Add(-6 * time.Minute), webhook.ErrTimestampTolerance},
		{"timestamp not a number", secret, "soon", both, string(body), now, webhook.ErrTimestampTolerance},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(c.secret, "msg_1", c.ts, c.sig, []byte(c.body), c.at, 5*time.Minute)
			if c.err == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, c.err)
			}
		})
	}
}
