package catalog

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gantry/store"
)

// Filter selects and orders catalog entries.
type Filter struct {
	Query   string // in the repository name or description, case-insensitive
	License string // an SPDX id the licence expression names
	GenAI   *bool
	Access  string
	Kind    string // image, dataset or model
	Sort    string // recent (default), pulls, name
	Cursor  string // the offset of the page in the filtered order
	Limit   int
}

// index is every publication held in memory with the text search looks in
// already lower-cased, and the three orders the catalog sorts by computed
// once. It is immutable; a new one replaces it when the store's
// publications move.
type index struct {
	gen, pullsGen uint64              // the store's generations it was built at
	pubs          []store.Publication // repository (name) order
	repo          []string            // lower-cased, as pubs
	desc          []string
	lic           []string
	recent        []int32 // positions in pubs, most recently updated first
	byPulls       []int32 // most pulled first
}

// searchIndex holds the current index.
type searchIndex struct {
	mu  sync.Mutex // serialises building in the request path
	cur *index
}

// current returns the index to search. A publication published, changed
// or removed is seen at once: the index is rebuilt before answering. Pull
// counts alone (every node reports them every few seconds) are brought in
// by refresh, from Run, so no search waits for them; they are seconds late
// anyway.
func (c *Catalog) current() (*index, error) {
	gen, pulls := c.st.PublicationsGeneration(), c.st.PullsGeneration() // before reading: see store
	c.idx.mu.Lock()
	defer c.idx.mu.Unlock()
	if ix := c.idx.cur; ix != nil && ix.gen == gen {
		return ix, nil
	}
	ix, err := c.build(gen, pulls)
	if err != nil {
		return nil, err
	}
	c.idx.cur = ix
	return ix, nil
}

// refresh rebuilds an index whose pull counts are behind the store's, and
// swaps it in unless a publication changed meanwhile (the index built for
// that is newer). Searches go on with the current index while it runs.
func (c *Catalog) refresh() {
	gen, pulls := c.st.PublicationsGeneration(), c.st.PullsGeneration()
	c.idx.mu.Lock()
	cur := c.idx.cur
	c.idx.mu.Unlock()
	if cur == nil || cur.gen != gen || cur.pullsGen == pulls {
		return // nobody searched yet, a search rebuilds it anyway, or current
	}
	ix, err := c.build(gen, pulls)
	if err != nil {
		c.log.Warn("rebuild the catalog's search index", "err", err)
		return
	}
	c.idx.mu.Lock()
	defer c.idx.mu.Unlock()
	if c.idx.cur != nil && c.idx.cur.gen == gen {
		c.idx.cur = ix
	}
}

// build reads every publication into a new index.
func (c *Catalog) build(gen, pulls uint64) (*index, error) {
	ix := &index{gen: gen, pullsGen: pulls}
	err := c.st.Publications(func(p *store.Publication) bool {
		if !p.Listed() {
			return true // pending or rejected review, taken down: not in the catalog
		}
		p.Grant.Text = "" // the agreement is read from the store when shown
		ix.pubs = append(ix.pubs, *p)
		ix.repo = append(ix.repo, strings.ToLower(p.Repo))
		ix.desc = append(ix.desc, strings.ToLower(p.Description))
		ix.lic = append(ix.lic, strings.ToLower(p.Licence.Expression))
		return true
	})
	if err != nil {
		return nil, err
	}
	ix.recent = make([]int32, len(ix.pubs))
	for i := range ix.recent {
		ix.recent[i] = int32(i)
	}
	ix.byPulls = slices.Clone(ix.recent)
	slices.SortStableFunc(ix.recent, func(a, b int32) int { return ix.pubs[b].Updated.Compare(ix.pubs[a].Updated) })
	slices.SortStableFunc(ix.byPulls, func(a, b int32) int { return cmp.Compare(ix.pubs[b].Pulls, ix.pubs[a].Pulls) })
	return ix, nil
}

// Search lists publications matching f, a page at a time: the next page's
// cursor is returned ("" at the end). It reads an in-memory index rebuilt
// only when a publication changed.
func (c *Catalog) Search(f Filter) ([]store.Publication, string, error) {
	ix, err := c.current()
	if err != nil {
		return nil, "", err
	}
	q, lic := strings.ToLower(f.Query), strings.ToLower(f.License)
	match := func(i int) bool {
		p := &ix.pubs[i]
		switch {
		case q != "" && !strings.Contains(ix.repo[i], q) && !strings.Contains(ix.desc[i], q):
		case lic != "" && !strings.Contains(ix.lic[i], lic):
		case f.GenAI != nil && p.GenAI != *f.GenAI:
		case f.Access != "" && p.Access != f.Access:
		case f.Kind != "" && p.KindOf() != f.Kind:
		default:
			return true
		}
		return false
	}
	start, _ := strconv.Atoi(f.Cursor)
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	var order []int32
	switch f.Sort {
	case "pulls":
		order = ix.byPulls
	case "name":
	default:
		order = ix.recent
	}
	var out []store.Publication
	seen, more := 0, false
	for k := range ix.pubs {
		i := k
		if order != nil {
			i = int(order[k])
		}
		if !match(i) {
			continue
		}
		if seen >= start {
			if len(out) == limit {
				more = true
				break
			}
			out = append(out, ix.pubs[i])
		}
		seen++
	}
	next := ""
	if more {
		next = strconv.Itoa(start + limit)
	}
	return out, next, nil
}
