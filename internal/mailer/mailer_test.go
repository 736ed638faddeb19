package mailer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/mailer"
	"github.com/perkshq/perks/internal/mailer/mailertest"
)

func TestSendActivation(t *testing.T) {
	t.Parallel()
	f := mailertest.Start(t)
	m, err := mailer.New("smtp+plain://"+f.Addr(), "perks@example.test")
	require.NoError(t, err)
	link := "https://perks.example.test/portal/activate?token=abc"
	require.NoError(t, m.SendActivation(context.Background(), "ana@example.test", link, time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)))
	msgs := f.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, "<ana@example.test>", msgs[0].To)
	require.Contains(t, msgs[0].Data, "Subject: Activate your Perks portal account")
	require.Contains(t, msgs[0].Body, link)
	require.Contains(t, msgs[0].Body, "2026-11-28 12:00 UTC")
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, from, want string }{
		{"smtp://mail.example.test", "", "PERKS_SMTP_FROM"},
		{"http://mail.example.test", "a@b.test", "scheme"},
		{"smtp://", "a@b.test", "host"},
		{"smtp://mail.example.test:x", "a@b.test", "not a URL"},
	} {
		_, err := mailer.New(tc.url, tc.from)
		require.ErrorContains(t, err, tc.want, tc.url)
	}
	_, err := mailer.New("smtps://u:p@mail.example.test", "a@b.test")
	require.NoError(t, err)
}

// TestErrorsNeverCarryTheAddress: the portal logs a failed send; neither
// go-mail's message about a bad address nor a server that cannot be
// reached may put the address into that line.
func TestErrorsNeverCarryTheAddress(t *testing.T) {
	t.Parallel()
	m, err := mailer.New("smtp+plain://127.0.0.1:1", "perks@example.test")
	require.NoError(t, err)
	for _, to := range []string{"not an address ana.secret@example", "Ana.Secret@Example.test"} {
		err := m.SendActivation(context.Background(), to, "https://x.test/a?token=t", time.Now())
		require.Error(t, err)
		require.NotContains(t, strings.ToLower(err.Error()), "ana.secret", err.Error())
	}
}
