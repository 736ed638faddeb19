package graph

import "github.com/perkshq/perks/graph/model"

// newPageInfo starts the PageInfo of a forward page (first/after): more
// items follow when the resolver read one beyond the page, and items come
// before it exactly when the client passed an after cursor (the page
// follows at least the item that cursor names). Relay allows false for
// hasPreviousPage when paging forward; true is cheaper to act on: a client
// that sees it knows it holds a later page. Cursors are filled in by
// addCursor as edges are appended.
func newPageInfo(after *string, hasNext bool) *model.PageInfo {
	return &model.PageInfo{HasNextPage: hasNext, HasPreviousPage: after != nil && *after != ""}
}

// addCursor records the cursor of an edge just appended: the first one is
// the page's startCursor, the latest its endCursor.
func addCursor(pi *model.PageInfo, cur string) {
	if pi.StartCursor == nil {
		pi.StartCursor = &cur
	}
	pi.EndCursor = &cur
}
