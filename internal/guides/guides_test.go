package guides_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/guides"
)

const sample = "# A guide\n\n" +
	"```js file=hello.mjs\nconsole.log(JSON.stringify({hello: process.env.WHO}));\n```\n\n" +
	"```sh\nnot run: an illustration\n```\n\n" +
	"```sh run\nGREETING=hi\necho \"$GREETING $WHO\"\n```\n\n" +
	"```text output\nhi ...\n```\n\n" +
	"```sh run\ncat hello.mjs | wc -l\necho \"$GREETING again\"\n```\n"

func TestParse(t *testing.T) {
	t.Parallel()
	blocks, err := guides.Parse(sample)
	require.NoError(t, err)
	require.Len(t, blocks, 5)
	require.Equal(t, guides.Block{Lang: "js", File: "hello.mjs", Body: "console.log(JSON.stringify({hello: process.env.WHO}));\n", Line: 3}, blocks[0])
	require.False(t, blocks[1].Run)
	require.True(t, blocks[2].Run)
	require.True(t, blocks[3].Output)
	require.Equal(t, 16, blocks[3].Line)

	for name, doc := range map[string]string{
		"unknown mark":   "```sh runn\necho\n```\n",
		"two marks":      "```sh run output\necho\n```\n",
		"path in file=":  "```js file=../x.js\n```\n",
		"unclosed fence": "```sh run\necho\n",
	} {
		_, err := guides.Parse(doc)
		require.Error(t, err, name)
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		want, got string
		ok        bool
	}{
		{`{"userId":"...","created":true}`, `{"userId":"8d2a","created":true}` + "\n", true},
		{`{"userId":"...","created":true}`, `{"userId":"8d2a","created":false}`, false},
		{"a\n...\nc", "a\nb\nb\nc", true},
		{"exact", "exact but longer", false},
		{"1.5", "105", false}, // a dot is not a wildcard
	} {
		require.Equal(t, tt.ok, guides.Match(tt.want, tt.got), "%q vs %q", tt.want, tt.got)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	run := func(doc string) (*guides.Result, error) {
		return guides.Run(context.Background(), doc, guides.Options{Dir: t.TempDir(), Env: map[string]string{"WHO": "reader"}})
	}

	t.Run("Passes", func(t *testing.T) {
		t.Parallel()
		res, err := run(sample)
		require.NoError(t, err)
		require.Equal(t, []string{"hi reader\n", "1\nhi again\n"}, res.Outputs)
	})

	t.Run("WrongOutputFails", func(t *testing.T) {
		t.Parallel()
		_, err := run("```sh run\necho bye\n```\n```text output\nhi ...\n```\n")
		require.ErrorContains(t, err, "line 1 printed:\nbye")
	})

	t.Run("FailingCommandStopsTheGuide", func(t *testing.T) {
		t.Parallel()
		res, err := run("```sh run\necho one\n```\n\n```sh run\nfalse\necho never\n```\n\n```sh run\necho three\n```\n")
		require.ErrorContains(t, err, "the run block of line 5 failed")
		require.Equal(t, []string{"one\n"}, res.Outputs)
	})

	t.Run("FailingPipelineStopsTheGuide", func(t *testing.T) {
		t.Parallel()
		_, err := run("```sh run\nfalse | cat\necho never\n```\n")
		require.ErrorContains(t, err, "line 1 failed")
	})

	t.Run("NoRunBlock", func(t *testing.T) {
		t.Parallel()
		_, err := run("```sh\necho\n```\n")
		require.ErrorContains(t, err, "no run block")
	})

	t.Run("BackgroundProcessesAreKilled", func(t *testing.T) {
		t.Parallel()
		res, err := run("```sh run\nsleep 600 &\necho started\n```\n")
		require.NoError(t, err)
		require.Equal(t, []string{"started\n"}, res.Outputs)
	})
}
