package console

import (
	"net/url"
	"strings"
)

// Path is where the console is mounted.
const Path = "/admin"

// ActivationLink is the link a platform admin's invitation carries
// (`perks admin create` prints it).
func ActivationLink(base, token string) string {
	return strings.TrimRight(base, "/") + Path + "/activate?token=" + url.QueryEscape(token)
}

// MerchantActivationLink is the link of a merchant admin's invitation: the
// merchant portal's activation page (/merchant, issue 17).
func MerchantActivationLink(base, token string) string {
	return strings.TrimRight(base, "/") + "/merchant/activate?token=" + url.QueryEscape(token)
}
