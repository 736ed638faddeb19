package export

import (
	"bufio"
	"context"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// StreamSQL is the feed as it was before the Go encoder: one query whose
// every line PostgreSQL rendered (FeedQuery, with the CSV select list),
// kept as the differential test's oracle. It is Stream's code of then.
func (s *Service) StreamSQL(ctx context.Context, cur Cursor, limit int, format Format, w Writer) (int, error) {
	tx, snap, err := s.begin(ctx, s.Pool)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	to := snap.xmin
	if to < cur.From {
		to = cur.From
	}
	if cur.To != 0 {
		to = cur.To
	}
	after := uuid.Nil
	if cur.After != nil {
		after = *cur.After
	}
	page := Page{Next: Cursor{PartnerID: cur.PartnerID, From: to}}
	var last *uuid.UUID
	if limit > 0 {
		rows, err := tx.Query(ctx, changedSQL+` SELECT user_id FROM changed ORDER BY user_id OFFSET $5 LIMIT 2`,
			cur.PartnerID, strconv.FormatUint(cur.From, 10), strconv.FormatUint(to, 10), after, limit-1)
		if err != nil {
			return 0, err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return 0, err
		}
		if len(ids) >= 1 {
			last = &ids[0]
		}
		if len(ids) == 2 {
			page = Page{Next: Cursor{PartnerID: cur.PartnerID, From: cur.From, To: to, After: last}, HasMore: true}
		}
	}
	if err := w.Begin(page); err != nil {
		return 0, err
	}
	upper := uuid.Max
	if last != nil {
		upper = *last
	}
	q := fmt.Sprintf(feedSQL, map[Format]string{NDJSON: ndjsonSelect, CSV: csvSelect}[format])
	rows, err := tx.Query(ctx, q, cur.PartnerID, strconv.FormatUint(cur.From, 10), strconv.FormatUint(to, 10), after, upper)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	bw := bufio.NewWriterSize(w, 64<<10)
	n := 0
	if format == CSV {
		if _, err := bw.WriteString(CSVHeader + "\n"); err != nil {
			return 0, err
		}
	}
	for rows.Next() {
		if _, err := bw.Write(rows.RawValues()[0]); err != nil {
			return n, err
		}
		if err := bw.WriteByte('\n'); err != nil {
			return n, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	next := s.Encode(page.Next)
	if format == CSV {
		_, err = fmt.Fprintf(bw, "#cursor,%s,%t,%d\n", next, page.HasMore, n)
	} else {
		_, err = fmt.Fprintf(bw, `{"cursor":%q,"hasMore":%t,"count":%d}`+"\n", next, page.HasMore, n)
	}
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// SetLanes turns the lanes of full exports off (false) or back on, so a
// test covers both ways of reading the big streams.
func SetLanes(s *Service, on bool) { s.noLanes = !on }

// ObserveLanes has fn told how many lanes each export of s opens and with
// which settings.
func ObserveLanes(s *Service, fn func(lanes int, settings string)) { s.onLanes = fn }

// SortedLanes is the settings of a whole export's lanes.
const SortedLanes = sortedLanes

// BigStreams is the queries a whole export runs on lanes.
func BigStreams() map[string]string {
	return map[string]string{"users": fmt.Sprintf(usersStream, ""), "balances": fmt.Sprintf(balancesStream, ""), "entries": entriesStream}
}
