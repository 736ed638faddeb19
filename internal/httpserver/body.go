package httpserver

import (
	"bytes"
	"io"
)

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
