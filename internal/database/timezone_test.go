package database_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"
	_ "time/tzdata" // the child's TZ resolves without the host's zoneinfo

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/dbtest"
)

// tzChildEnv, when set to a database URL, makes the test binary the child of
// TestTimestampsAreUTCWhateverTheZones.
const tzChildEnv = "PERKS_TEST_TZ_CHILD_DB"

// TestTimestampsAreUTCWhateverTheZones: timestamps read from PostgreSQL are
// in UTC, so the API writes them with a Z whatever the host's TZ and the
// session's TimeZone. pgx 5.11 started returning text-format timestamptz
// (every bun query: QueryExecModeExec) in time.Local, as its binary format
// (prepared statements, River) always did; without the pinned ScanLocation a
// host in Asia/Kolkata answered "05:30:00+05:30" where it had answered
// "00:00:00Z". time.Local is per process, so a child process runs the check
// under another zone.
func TestTimestampsAreUTCWhateverTheZones(t *testing.T) {
	if raw := os.Getenv(tzChildEnv); raw != "" {
		checkTimestampsUTC(t, raw)
		return
	}
	t.Parallel()
	u, err := url.Parse(dbtest.AdminURL(t))
	require.NoError(t, err)
	q := u.Query()
	q.Set("timezone", "America/New_York") // the session's zone, a runtime parameter
	u.RawQuery = q.Encode()
	child := exec.Command(os.Args[0], "-test.run=^TestTimestampsAreUTCWhateverTheZones$", "-test.count=1", "-test.v")
	child.Env = append(os.Environ(), tzChildEnv+"="+u.String(), "TZ=Asia/Kolkata")
	out, err := child.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "--- PASS: TestTimestampsAreUTCWhateverTheZones")
}

func checkTimestampsUTC(t *testing.T, raw string) {
	ctx := context.Background()
	_, offset := time.Now().Zone()
	require.Equal(t, 5*3600+1800, offset, "the child runs in Asia/Kolkata")
	db, err := database.Open(ctx, raw, 2)
	require.NoError(t, err)
	defer db.Close()
	var zone string
	require.NoError(t, db.Bun.NewRaw("SHOW TimeZone").Scan(ctx, &zone))
	require.Equal(t, "America/New_York", zone)

	const query = "SELECT '2024-01-01T00:00:00Z'::timestamptz"
	var viaBun, viaPrepared time.Time
	require.NoError(t, db.Bun.NewRaw(query).Scan(ctx, &viaBun))
	row, err := database.QueryRow(ctx, db.Bun, query)
	require.NoError(t, err)
	require.NoError(t, row.Scan(&viaPrepared))
	var inArray []time.Time
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT ARRAY['2024-01-01T00:00:00Z'::timestamptz]").Scan(&inArray))
	require.Len(t, inArray, 1)
	for name, ts := range map[string]time.Time{"bun (text format)": viaBun, "prepared (binary format)": viaPrepared, "array": inArray[0]} {
		b, err := json.Marshal(ts)
		require.NoError(t, err)
		require.Equal(t, `"2024-01-01T00:00:00Z"`, string(b), name)
		require.Equal(t, time.UTC, ts.Location(), name)
	}
}
