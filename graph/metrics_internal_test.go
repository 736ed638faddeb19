package graph

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestOperationNamesAreBounded: client-given operation names never grow
// the label set past maxOperationNames, and odd names are "other".
func TestOperationNamesAreBounded(t *testing.T) {
	t.Parallel()
	m := newOperationMetrics(prometheus.NewRegistry())
	require.Equal(t, "anonymous", m.name(""))
	require.Equal(t, "other", m.name("drop table; --"))
	require.Equal(t, "other", m.name(string(make([]byte, 65))))
	for i := range maxOperationNames {
		require.Equal(t, fmt.Sprintf("Op%d", i), m.name(fmt.Sprintf("Op%d", i)))
	}
	require.Equal(t, "other", m.name("OneTooMany"))
	require.Equal(t, "Op7", m.name("Op7"), "a known name keeps its label")
}
