package account

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// SetSessionSandbox switches the session of cookie token tok between the
// live partner (false) and its sandbox (true). The switch is server-side
// state of that one session: the same account, permissions and CSRF token;
// other sessions of the account (another browser) keep their own
// environment, and every new sign-in starts on live. Whether the partner
// has a sandbox is the caller's business (the portal checks before
// switching and falls back to live when it is gone).
func (s *Service) SetSessionSandbox(ctx context.Context, db bun.IDB, tok string, sandbox bool) error {
	_, err := db.NewUpdate().Table("account_sessions").Set("sandbox = ?", sandbox).
		Where("token_hash = ?", HashToken("session", tok)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("switch session environment: %w", err)
	}
	return nil
}
