package program

import "time"

// Overrides are an earning rule's own pending and expiry days; nil means
// the policy applies.
type Overrides struct {
	PendingDays *int
	ExpiryDays  *int
}

// Resolve dates the lot of points earned at earnedAt under policy p, with
// the rule's overrides o, in the partner's time zone loc (nil means UTC).
// It is pure: the ledger calls it in the earn's transaction.
//
// availableAt is earnedAt plus the pending days (rule's, else the
// policy's), counted in calendar days in loc so that a DST change does not
// move the hour. With no pending days it is earnedAt itself.
//
// expiresAt is nil when the points never expire. Expiry counts from
// availableAt, not from the earn: pending points cannot be spent, and a
// pending period must not eat the time a user has to spend them (with no
// pending days the two are the same). Expiry is an exclusive bound: the
// points are spendable strictly before expiresAt.
//
//   - A rule's expiryDays applies a rolling expiry of that many days
//     whatever the policy's mode (rounded to the end of the month when the
//     policy rounds).
//   - rolling: availableAt + ExpiryDays calendar days; rounded, the end of
//     that day's month in loc (the first instant of the next month), so
//     points earned on 31 Jan with 30 days expire at the end of March 2nd's
//     month, 31 March, and 29 days from 31 Jan 2024 end February 29th.
//   - fixed: the end (in loc) of the first listed date that falls on or
//     after availableAt's day; when every date of this year has passed, the
//     first date of next year (points earned on 31 Dec with 12-31 expire
//     that night; with 06-30 they expire on 30 June next year).
//   - none: never.
func Resolve(p Policy, o Overrides, earnedAt time.Time, loc *time.Location) (availableAt time.Time, expiresAt *time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	local := earnedAt.In(loc)
	pending := p.PendingDays
	if o.PendingDays != nil {
		pending = *o.PendingDays
	}
	availableAt = earnedAt
	if pending > 0 {
		availableAt = local.AddDate(0, 0, pending)
	}
	base := availableAt.In(loc)

	var exp time.Time
	switch {
	case o.ExpiryDays != nil:
		exp = rolling(base, *o.ExpiryDays, p.ExpiryRoundToMonthEnd)
	case p.ExpiryMode == ExpiryRolling && p.ExpiryDays != nil:
		exp = rolling(base, *p.ExpiryDays, p.ExpiryRoundToMonthEnd)
	case p.ExpiryMode == ExpiryFixed && len(p.ExpiryDates) > 0:
		var ok bool
		if exp, ok = nextFixed(base, p.ExpiryDates); !ok {
			return availableAt.UTC(), nil
		}
	default:
		return availableAt.UTC(), nil
	}
	exp = exp.UTC()
	return availableAt.UTC(), &exp
}

func rolling(base time.Time, days int, roundToMonthEnd bool) time.Time {
	t := base.AddDate(0, 0, days)
	if roundToMonthEnd {
		// Day 1 of the next month at midnight: the end of t's month.
		t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, t.Location())
	}
	return t
}

// nextFixed is the end of the first date on or after base's day, looking at
// this year and the next. Invalid dates (Validate refuses them) are skipped;
// ok is false when none is valid.
func nextFixed(base time.Time, dates []string) (time.Time, bool) {
	y, m, d := base.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, base.Location())
	var best time.Time
	found := false
	for _, s := range dates {
		month, day, ok := parseDate(s)
		if !ok {
			continue
		}
		for _, year := range []int{y, y + 1} {
			day0 := time.Date(year, month, day, 0, 0, 0, 0, base.Location())
			if day0.Before(today) {
				continue
			}
			end := day0.AddDate(0, 0, 1)
			if !found || end.Before(best) {
				best, found = end, true
			}
			break
		}
	}
	return best, found
}
