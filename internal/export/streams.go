package export

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The feed is read as plain columns in PostgreSQL's binary format, one
// stream per table, every stream ordered by user id, and merged here (see
// Stream): PostgreSQL rendering each line with json_build_object cost about
// ten times a plain COPY of the users by itself (docs/benchmarks.md).
//
// A stream runs either as a cursor of the export's own transaction, fetched
// a batch at a time when the merge needs it (a "local" stream), or on a
// connection of its own that imports the export's snapshot and reads ahead
// in a goroutine (a "lane"): the few big streams of a full export run as
// lanes, so PostgreSQL reads the users, their entries and their balances on
// several cores while this process encodes. Every stream sees the same
// snapshot, so a lane reads exactly what a cursor would have.

// fetchRows is how many rows a batch holds.
const fetchRows = 1024

// binaryResults asks for every result column in the binary format.
var binaryResults = []int16{1}

// paramOIDs types the streams' parameters (partner uuid, from and to as
// text cast to xid8, the page's user id bounds), so that a stream that
// does not use one of them still runs.
var paramOIDs = []uint32{2950, 25, 25, 2950, 2950}

// batch holds up to fetchRows rows of a stream: each row's ncols raw
// binary values (nil for NULL) point into buf, so a batch is filled
// without an allocation per row once its buffers have grown.
type batch struct {
	buf  []byte
	vals [][]byte
	rows int
}

func newBatch() *batch { return &batch{buf: make([]byte, 0, 64<<10)} }

func (b *batch) reset() {
	b.buf, b.vals, b.rows = b.buf[:0], b.vals[:0], 0
}

// fill appends up to max rows of rr to b; false once rr has no more rows.
func (b *batch) fill(rr *pgconn.ResultReader, max int) bool {
	for b.rows < max {
		if !rr.NextRow() {
			return false
		}
		b.buf, b.vals = appendValues(b.buf, b.vals, rr.Values())
		b.rows++
	}
	return true
}

// stream is one ordered input of the merge. Its first column is the user
// id (16 bytes).
type stream struct {
	ncols int
	cur   *batch
	pos   int
	done  bool
	// next returns the stream's next batch, nil at the end; the previous
	// one (if any) is handed back for reuse first.
	next func(prev *batch) (*batch, error)

	// rows gathered for the user being merged (gather).
	acc    [][]byte
	accBuf []byte
	n      int
}

// head is the user id of the stream's next row, nil at the end.
func (s *stream) head(ctx context.Context) ([]byte, error) {
	for !s.done && (s.cur == nil || s.pos >= s.cur.rows) {
		b, err := s.next(s.cur)
		if err != nil {
			return nil, err
		}
		s.cur, s.pos = b, 0
		if b == nil {
			s.done = true
		}
	}
	if s.done {
		return nil, nil
	}
	return s.cur.vals[s.pos*s.ncols], nil
}

// gather copies every row of user id into acc (n rows).
func (s *stream) gather(ctx context.Context, id []byte) error {
	s.acc, s.accBuf, s.n = s.acc[:0], s.accBuf[:0], 0
	if s.accBuf == nil {
		s.accBuf = make([]byte, 0, 1024)
	}
	for {
		h, err := s.head(ctx)
		if err != nil {
			return err
		}
		if h == nil || !bytes.Equal(h, id) {
			return nil
		}
		s.accBuf, s.acc = appendValues(s.accBuf, s.acc, s.cur.vals[s.pos*s.ncols:(s.pos+1)*s.ncols])
		s.n++
		s.pos++
	}
}

// row is the i-th gathered row.
func (s *stream) row(i int) [][]byte { return s.acc[i*s.ncols : (i+1)*s.ncols] }

// streamSet runs the streams of one export and cleans up after them.
type streamSet struct {
	conn    *pgconn.PgConn // the export's transaction
	params  [][]byte
	cursors int
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// local declares q as a cursor of the export's transaction.
func (ss *streamSet) local(ctx context.Context, q string, ncols int) (*stream, error) {
	name := "perks_export_" + strconv.Itoa(ss.cursors)
	ss.cursors++
	if _, err := ss.conn.ExecParams(ctx, "DECLARE "+name+" NO SCROLL CURSOR FOR "+q, ss.params, paramOIDs, nil, nil).Close(); err != nil {
		return nil, fmt.Errorf("export declare %s: %w", name, err)
	}
	fetch := "FETCH FORWARD " + strconv.Itoa(fetchRows) + " FROM " + name
	var spare *batch
	return &stream{ncols: ncols, next: func(prev *batch) (*batch, error) {
		if prev != nil && prev.rows < fetchRows {
			return nil, nil // a short fetch was the last
		}
		b := prev
		if b == nil {
			if spare == nil {
				spare = newBatch()
			}
			b = spare
		}
		b.reset()
		rr := ss.conn.ExecParams(ctx, fetch, nil, nil, nil, binaryResults)
		b.fill(rr, fetchRows)
		if _, err := rr.Close(); err != nil {
			return nil, fmt.Errorf("export fetch %s: %w", name, err)
		}
		if b.rows == 0 {
			return nil, nil
		}
		return b, nil
	}}, nil
}

// lane runs q on conn (which has imported the export's snapshot) in a
// goroutine that reads ahead a few batches; release gives conn back.
func (ss *streamSet) lane(ctx context.Context, conn *pgxpool.Conn, q string, ncols int) *stream {
	full := make(chan *batch, 4)
	free := make(chan *batch, 6)
	var laneErr error
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		defer close(full)
		defer releaseLane(conn)
		rr := conn.Conn().PgConn().ExecParams(ctx, q, ss.params, paramOIDs, nil, binaryResults)
		for more := true; more; {
			var b *batch
			select {
			case b = <-free:
			default:
				b = newBatch()
			}
			b.reset()
			more = b.fill(rr, fetchRows)
			if b.rows == 0 {
				break
			}
			select {
			case full <- b:
			case <-ctx.Done():
				more = false
			}
		}
		if _, err := rr.Close(); err != nil {
			laneErr = fmt.Errorf("export lane: %w", err)
		}
	}()
	return &stream{ncols: ncols, next: func(prev *batch) (*batch, error) {
		if prev != nil {
			select {
			case free <- prev:
			default:
			}
		}
		b, ok := <-full
		if !ok {
			// The goroutine has ended: laneErr is set and visible
			// (close happens after the write).
			if laneErr != nil {
				return nil, laneErr
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, nil
		}
		return b, nil
	}}
}

func releaseLane(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A connection still in a transaction (the rollback failed) is
	// closed by the pool instead of reused.
	_, _ = conn.Exec(ctx, "ROLLBACK")
	conn.Release()
}

// openLanes acquires up to n connections that import the snapshot and run
// settings (SET LOCAL statements), without waiting for a busy pool (a lane
// is an optimisation: its stream then runs as a cursor of the export's
// transaction instead).
func openLanes(ctx context.Context, pool *pgxpool.Pool, snapshot string, n int, settings string) []*pgxpool.Conn {
	var out []*pgxpool.Conn
	for i := 0; i < n; i++ {
		if st := pool.Stat(); st.IdleConns() == 0 && st.TotalConns() >= st.MaxConns() {
			break
		}
		actx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		conn, err := pool.Acquire(actx)
		cancel()
		if err != nil {
			break
		}
		if _, err := conn.Conn().PgConn().Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '"+snapshot+"'; "+settings).ReadAll(); err != nil {
			releaseLane(conn)
			break
		}
		out = append(out, conn)
	}
	return out
}

// noJIT turns PostgreSQL's JIT compilation off for the export's
// transactions: the streams are plain scans that a million users push over
// jit_above_cost, and compiling them cost 0.3-2 s of CPU per stream in
// measurements, more than it saved.
const noJIT = "SET LOCAL jit = off"

// sortedLanes makes the lanes of a whole export (every user, no page
// bound) read their table in physical order and sort it by user id,
// instead of following the (partner_id, user_id) index. The planner
// prefers the index (it costs a heap page visit as cheap once cached), but
// at a million users the index order visits the heap pages at random, a
// cache miss per row: measured with psql on the bench's data
// (docs/benchmarks.md, "Issue 18, session 7: export"), PostgreSQL spent
// 1.2, 0.9 and 1.35 s of CPU on the users, balances and entries in index
// order against 0.9, 0.45 and 0.85 s for a sequential scan and a sort
// (external, in the server's work_mem), and the index's random reads leave
// shared buffers once the tables outgrow them. Only ordered index scans
// are turned off: a bitmap heap scan also reads the heap in physical
// order, and it reads only the partner's pages, so the planner still takes
// it for a partner with a small share of a table that many share (a
// sequential scan would read every partner's rows), and a sequential scan
// for one that fills it. A page of the feed (a user id range) keeps the
// planner's choice: there the index reads only the range. Parallel workers
// are off: the lanes already put the streams on separate cores, and a
// worker's tuples cost a copy through its queue.
const sortedLanes = "SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off; SET LOCAL max_parallel_workers_per_gather = 0"

// close stops the lanes and waits for their goroutines.
func (ss *streamSet) close() {
	ss.cancel()
	ss.wg.Wait()
}

// appendValues copies src's values into buf and appends, to vals, slices
// of buf holding them (nil for NULL). buf must not be nil, so that an empty
// value stays non-nil (not NULL). Slices into an array that a later append
// outgrows stay valid: the old array is kept while they point to it.
func appendValues(buf []byte, vals, src [][]byte) ([]byte, [][]byte) {
	for _, v := range src {
		if v == nil {
			vals = append(vals, nil)
			continue
		}
		start := len(buf)
		buf = append(buf, v...)
		vals = append(vals, buf[start:len(buf):len(buf)])
	}
	return buf, vals
}
