package webhook

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/user"
)

// Payload is the JSON body of every delivery.
type Payload struct {
	ID        uuid.UUID       `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"createdAt"`
	Partner   PartnerRef      `json:"partner"`
	Data      json.RawMessage `json:"data"`
	// Environment is "sandbox" in every payload of a sandbox's events and
	// absent from live ones (docs/sandbox.md): an added optional field,
	// covered by the signature, so receivers that ignore unknown fields
	// are unaffected.
	Environment string `json:"environment,omitempty"`
}

// PartnerRef names the partner an event belongs to.
type PartnerRef struct {
	ID   uuid.UUID `json:"id"`
	Slug string    `json:"slug"`
}

// payloadFor renders the body of ev from current state, with u the event's
// user as read now (nil when erased or when the event is about nobody). The
// event row holds ids and non-personal facts; personal data is read at each
// attempt, so an anonymised user's events carry none, however late they are
// (re)sent.
func (s *Service) payloadFor(ev *event.Event, slug string, sandbox bool, u *user.User) ([]byte, error) {
	data, err := s.buildData(ev, u)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Payload{
		ID: ev.ID, Type: ev.Type, CreatedAt: ev.CreatedAt.UTC(),
		Partner: PartnerRef{ID: ev.PartnerID, Slug: slug}, Data: data, Environment: environment(sandbox),
	})
}

// buildData passes the stored data through and, for events about a user,
// adds userId and externalUserId (null once anonymised); user.* events also
// get the profile, unless the user is anonymised.
func (s *Service) buildData(ev *event.Event, u *user.User) (json.RawMessage, error) {
	if ev.UserID == nil || s.Users == nil {
		if len(ev.Data) == 0 {
			return json.RawMessage("{}"), nil
		}
		return ev.Data, nil
	}
	data := map[string]any{}
	if len(ev.Data) > 0 {
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			return nil, fmt.Errorf("event %s data is not a JSON object: %w", ev.ID, err)
		}
	}
	if data == nil { // stored as JSON null: an event emitted without data
		data = map[string]any{}
	}
	data["userId"] = ev.UserID
	data["externalUserId"] = nil
	isUserEvent := strings.HasPrefix(ev.Type, "user.")
	if u == nil {
		// Erased: nothing left to say but the id.
		if isUserEvent {
			data["anonymised"] = true
		}
		return json.Marshal(data)
	}
	data["externalUserId"] = u.ExternalID
	if isUserEvent {
		data["anonymised"] = u.Anonymised()
		if !u.Anonymised() {
			data["email"] = u.Email
			data["displayName"] = u.DisplayName
			data["firstName"] = u.FirstName
			data["lastName"] = u.LastName
			data["locale"] = u.Locale
			data["countryCode"] = u.CountryCode
		}
	}
	return json.Marshal(data)
}

func environment(sandbox bool) string {
	if sandbox {
		return partner.EnvironmentSandbox
	}
	return ""
}
