// Package mailer sends the portals' mail (activation links) over SMTP with
// wneessen/go-mail, configured by one URL (PERKS_SMTP_URL):
//
//	smtp://user:password@host:587     STARTTLS required
//	smtps://user:password@host:465    TLS from the start
//	smtp+plain://host:1025            no TLS: development relays (MailHog, Mailpit) only
//
// Without PERKS_SMTP_URL nothing is mailed and the links are shown to whoever
// invites (and printed by the CLI). Mail bodies carry the link; nothing
// here logs them.
package mailer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
)

// SMTP sends mail through one server.
type SMTP struct {
	host string
	opts []mail.Option
	from string
}

// New parses an SMTP URL; from is the sender address.
func New(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("PERKS_SMTP_URL is not a URL")
	}
	if u.Hostname() == "" {
		return nil, errors.New("PERKS_SMTP_URL needs a host")
	}
	if from == "" {
		return nil, errors.New("PERKS_SMTP_FROM is required with PERKS_SMTP_URL")
	}
	opts := []mail.Option{mail.WithTimeout(15 * time.Second)}
	port := 0
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, errors.New("PERKS_SMTP_URL has a bad port")
		}
	}
	switch u.Scheme {
	case "smtp":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
		if port == 0 {
			port = 587
		}
	case "smtps":
		opts = append(opts, mail.WithSSL())
		if port == 0 {
			port = 465
		}
	case "smtp+plain":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
		if port == 0 {
			port = 25
		}
	default:
		return nil, errors.New("PERKS_SMTP_URL scheme must be smtp, smtps or smtp+plain")
	}
	opts = append(opts, mail.WithPort(port))
	if u.User != nil {
		pw, _ := u.User.Password()
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(u.User.Username()), mail.WithPassword(pw))
	} else {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthNoAuth))
	}
	return &SMTP{host: u.Hostname(), opts: opts, from: from}, nil
}

// Send sends one plain-text message. Its errors never carry the address
// (go-mail's and the server's messages may quote it; callers log them).
func (s *SMTP) Send(ctx context.Context, to, subject, body string) error {
	return withoutAddress(s.send(ctx, to, subject, body), to)
}

func (s *SMTP) send(ctx context.Context, to, subject, body string) error {
	m := mail.NewMsg()
	if err := m.From(s.from); err != nil {
		return fmt.Errorf("mail sender: %w", err)
	}
	if err := m.To(to); err != nil {
		return fmt.Errorf("mail recipient: %w", err)
	}
	m.Subject(subject)
	m.SetDate()
	m.SetMessageID()
	m.SetBodyString(mail.TypeTextPlain, body)
	c, err := mail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("mail client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("send mail: %w", err)
	}
	return nil
}

// addressError is an error whose text had the recipient's address
// replaced; errors.Is and As still reach the original.
type addressError struct {
	msg string
	err error
}

func (e *addressError) Error() string { return e.msg }
func (e *addressError) Unwrap() error { return e.err }

// withoutAddress hides to in err's text (as written, and lower-cased, as
// servers often echo it).
func withoutAddress(err error, to string) error {
	if err == nil || to == "" {
		return err
	}
	msg := err.Error()
	clean := strings.ReplaceAll(strings.ReplaceAll(msg, to, "<recipient>"), strings.ToLower(to), "<recipient>")
	if clean == msg {
		return err
	}
	return &addressError{msg: clean, err: err}
}

// SendActivation mails an activation link (portal.Mailer).
func (s *SMTP) SendActivation(ctx context.Context, to, link string, expires time.Time) error {
	body := "You have been invited to the Perks partner portal.\r\n\r\n" +
		"Open this link to choose your password and set up your second factor:\r\n\r\n" + link + "\r\n\r\n" +
		"The link works once, until " + expires.UTC().Format("2006-01-02 15:04 UTC") + ". If it has expired, ask for a new one.\r\n"
	return s.Send(ctx, to, "Activate your Perks portal account", body)
}
