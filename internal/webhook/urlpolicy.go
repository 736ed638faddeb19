package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/perkshq/perks/internal/apperr"
)

// URLPolicy decides where deliveries may go. A partner controls its endpoint
// URLs, so without it a webhook is a request forgery primitive against
// whatever the server can reach: loopback services, the private network, the
// cloud metadata endpoint.
//
// URLs are checked when an endpoint is saved (for a clear error) and, what
// actually protects, every connection is checked at dial time against the
// address it is about to connect to. A name that resolved to a public address
// when the endpoint was saved and to 127.0.0.1 now (DNS rebinding) is refused
// at the second check.
type URLPolicy struct {
	// RequireHTTPS refuses plain http URLs (production).
	RequireHTTPS bool
	// AllowPrivate allows loopback, private and link-local addresses
	// (development and tests). Cloud metadata addresses stay refused.
	AllowPrivate bool
	// Development adds to a refused loopback, private or localhost URL the
	// setting that allows it (AllowPrivateSetting); production never
	// suggests it.
	Development bool
	// Lookup resolves host names; nil uses the system resolver. Tests swap
	// it to simulate DNS rebinding.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// AllowPrivateSetting is the configuration variable behind
// URLPolicy.AllowPrivate, named by development errors.
const AllowPrivateSetting = "PERKS_WEBHOOK_ALLOW_PRIVATE"

// metadataAddrs are cloud instance metadata services: never a webhook
// receiver, always a credential leak.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, DigitalOcean, ...
	netip.MustParseAddr("169.254.170.2"),   // AWS ECS task credentials
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
}

// specialPrefixes are ranges that are not covered by netip's predicates but
// are not the public internet either.
var specialPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: embeds an IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("100::/64"),        // discard
}

// ErrForbiddenAddress matches (errors.Is) every *ForbiddenAddrError.
var ErrForbiddenAddress = errors.New("address not allowed for webhooks")

// ForbiddenAddrError is a refused address and why.
type ForbiddenAddrError struct {
	Addr netip.Addr
	Kind string // loopback, private, link-local, cloud metadata, ...
}

func (e *ForbiddenAddrError) Error() string {
	return fmt.Sprintf("refusing to connect to %s (%s address)", e.Addr, e.Kind)
}

// Is makes errors.Is(err, ErrForbiddenAddress) true.
func (e *ForbiddenAddrError) Is(target error) bool { return target == ErrForbiddenAddress }

// CheckAddr returns nil when deliveries may connect to ip, else a
// *ForbiddenAddrError.
func (p *URLPolicy) CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap()
	for _, m := range metadataAddrs {
		if ip == m {
			return &ForbiddenAddrError{Addr: ip, Kind: "cloud metadata"}
		}
	}
	if p.AllowPrivate {
		return nil
	}
	var kind string
	switch {
	case !ip.IsValid():
		kind = "invalid"
	case ip.IsLoopback():
		kind = "loopback"
	case ip.IsPrivate():
		kind = "private"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		kind = "link-local"
	case ip.IsUnspecified():
		kind = "unspecified"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		kind = "multicast"
	default:
		for _, pre := range specialPrefixes {
			if pre.Contains(ip) {
				kind = "reserved"
				break
			}
		}
	}
	if kind != "" {
		return &ForbiddenAddrError{Addr: ip, Kind: kind}
	}
	return nil
}

func (p *URLPolicy) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if p.Lookup != nil {
		return p.Lookup(ctx, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

const maxURLLen = 2048

// CheckURL validates an endpoint URL for saving. It returns *apperr.Error
// values naming field. A name that does not resolve right now is accepted:
// the receiver may be set up later, and the dial-time check still applies.
func (p *URLPolicy) CheckURL(ctx context.Context, field, raw string) error {
	invalid := func(format string, args ...any) error {
		return apperr.Field(apperr.CodeInvalidField, field, format, args...)
	}
	forbidden := func(format string, args ...any) error {
		return apperr.Field(apperr.CodeWebhookURLForbidden, field, format, args...)
	}
	if raw == "" {
		return apperr.Field(apperr.CodeMissingField, field, "%s is required", field)
	}
	if len(raw) > maxURLLen {
		return invalid("%s must be at most %d characters", field, maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return invalid("%s must be an absolute URL such as https://example.com/webhooks", field)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if p.RequireHTTPS {
			return forbidden("%s must use https", field)
		}
	default:
		return invalid("%s must be an http(s) URL", field)
	}
	if u.User != nil {
		return invalid("%s must not carry credentials; authenticate deliveries with the signature", field)
	}
	if u.Fragment != "" {
		return invalid("%s must not have a #fragment", field)
	}
	// In development a local receiver is the usual first test: say how to
	// allow it. Cloud metadata addresses stay refused whatever the setting,
	// so they get no hint.
	hint := func(kind string) string {
		if !p.Development || kind == "cloud metadata" {
			return ""
		}
		return fmt.Sprintf(" (in development, set %s=true to allow loopback and private addresses)", AllowPrivateSetting)
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := p.CheckAddr(ip); err != nil {
			kind := err.(*ForbiddenAddrError).Kind
			return forbidden("%s points at a %s address; webhooks go to public https endpoints%s", field, kind, hint(kind))
		}
		return nil
	}
	if p.AllowPrivate {
		return nil
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		return forbidden("%s points at localhost%s", field, hint("loopback"))
	}
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := p.lookup(lctx, host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := p.CheckAddr(a); err != nil {
			kind := err.(*ForbiddenAddrError).Kind
			return forbidden("%s resolves to a %s address; webhooks go to public https endpoints%s", field, kind, hint(kind))
		}
	}
	return nil
}

// DialContext resolves addr, refuses forbidden addresses and connects to the
// first allowed one. The dialer's Control hook checks the address of the
// socket actually being connected once more, so nothing (a resolver quirk, a
// future change to this function) can connect around the policy.
func (p *URLPolicy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else if ips, err = p.lookup(ctx, host); err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: p.control}
	var errs []error
	for _, ip := range ips {
		if err := p.CheckAddr(ip); err != nil {
			errs = append(errs, err)
			continue
		}
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%s has no addresses", host)
	}
	return nil, errors.Join(errs...)
}

func (p *URLPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &ForbiddenAddrError{Kind: "unparsable"}
	}
	return p.CheckAddr(ap.Addr())
}
