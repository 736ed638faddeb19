package partner

import (
	"sync"
	"time"
)

// zones caches loaded time zones by name: LoadLocation reads the zone
// database from disk on every call.
var zones sync.Map // name -> *time.Location

// Location is the time zone named tz, UTC when tz is empty or unknown
// (partners.timezone is checked when set; a zone the host lacks falls back
// rather than failing a write). Loaded zones are cached.
func Location(tz string) *time.Location {
	if tz == "" || tz == "UTC" {
		return time.UTC
	}
	if v, ok := zones.Load(tz); ok {
		return v.(*time.Location)
	}
	l, err := time.LoadLocation(tz)
	if err != nil {
		return time.UTC
	}
	zones.Store(tz, l)
	return l
}

// Location is the partner's time zone (see the function Location).
func (p *Partner) Location() *time.Location { return Location(p.Timezone) }
