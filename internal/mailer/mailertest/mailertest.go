// Package mailertest is a fake SMTP server for tests (only _test.go files
// import it): the smallest dialogue go-mail needs, no TLS, no auth; it
// records every message.
package mailertest

import (
	"bufio"
	"io"
	"mime/quotedprintable"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message is one received mail.
type Message struct {
	To   string
	Data string // headers and raw body
	Body string // the body, quoted-printable decoded
}

// Server is a running fake.
type Server struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []Message
}

// Start listens on a free local port until the test ends.
func Start(t testing.TB) *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the PERKS_SMTP_URL of the fake.
func (s *Server) URL() string { return "smtp+plain://" + s.Addr() }

// Messages returns what was received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

func (s *Server) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	say := func(line string) { _, _ = c.Write([]byte(line + "\r\n")) }
	say("220 fake ESMTP")
	var to string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250-fake")
			say("250 8BITMIME")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			to = strings.TrimSpace(strings.TrimSpace(line)[len("RCPT TO:"):])
			say("250 ok")
		case cmd == "DATA":
			say("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			data := b.String()
			body := data
			if i := strings.Index(data, "\r\n\r\n"); i >= 0 {
				body = data[i+4:]
			}
			if dec, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body))); err == nil {
				body = string(dec)
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, Message{To: to, Data: data, Body: body})
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}
