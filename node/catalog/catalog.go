// Package catalog is the community catalog: publishing a repository under
// a licence (an SPDX expression checked with github/go-spdx, or a custom
// licence), its README rendered and sanitised (goldmark, bluemonday), the
// licence attached to its images as an OCI artifact (referrers API), the
// notices images built on a published image inherit, pull counts, and
// searching. The records and the licence gate itself are in package store
// (store/catalog.go), so the registry, the API and schedules firing in
// Apply decide alike; the HTTP routes are node/api's. See DESIGN.md.
package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/util"

	"gantry/data"
	"gantry/node/registry"
	"gantry/store"
)

// LicenceArtifactType is the artifact type of the licence Gantry attaches
// to the images of a published repository (and of images built on them).
const LicenceArtifactType = "application/vnd.gantry.licence.v1+text"

// AnnotationLicenses is the OCI annotation holding an SPDX expression.
const AnnotationLicenses = "org.opencontainers.image.licenses"

// Config wires the catalog.
type Config struct {
	Store    *store.Store
	Proposer store.Proposer
	Registry *registry.Registry // nil: no licence artifacts, no pull counts
	Logger   *slog.Logger
	// FlushEvery is how often this node's pull counts are reported (one
	// command for all repositories pulled since).
	FlushEvery time.Duration
}

// Catalog is one node's part of the community catalog.
type Catalog struct {
	cfg Config
	st  *store.Store
	log *slog.Logger
	md  goldmark.Markdown
	san *bluemonday.Policy
	idx searchIndex
}

// New returns the catalog.
func New(cfg Config) *Catalog {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 5 * time.Second
	}
	md := goldmark.New(goldmark.WithExtensions(extension.GFM),
		goldmark.WithRendererOptions(renderer.WithNodeRenderers(util.Prioritized(imageAsLink{}, 100))))
	return &Catalog{cfg: cfg, st: cfg.Store, log: cfg.Logger.With("component", "catalog"), md: md, san: bluemonday.UGCPolicy()}
}

// Publish is what a publisher sends.
type Publish struct {
	Repo        string
	License     string // an SPDX expression; or, with LicenseText and LicenseName, a custom licence
	LicenseName string
	LicenseText string
	Description string
	Readme      string // Markdown
	Access      string
	Questions   []string
	GenAI       bool
	GenAIFiled  bool
	Use         string
	Command     []string
	Lang        string // the language of the grant the publisher was shown: en or zh
}

var customName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$`)

// Licence checks a licence and returns its reference (the version is the
// sha256 of its expression and text) and the text to keep: an SPDX
// expression, valid per the SPDX licence list (with its text when the
// publisher gives one), or a custom licence LicenseRef-<name> with its
// text. Errors name the field.
func Licence(expression, name, text string) (store.LicenceRef, string, error) {
	bad := func(format string, args ...any) error { return store.Errorf(store.EInvalid, format, args...) }
	if len(text) > store.MaxLicenceText {
		return store.LicenceRef{}, "", bad("license_text: at most %d KiB", store.MaxLicenceText>>10)
	}
	custom := false
	switch {
	case name != "":
		if expression != "" {
			return store.LicenceRef{}, "", bad("license: give an SPDX expression or a custom licence (license_name and license_text), not both")
		}
		if !customName.MatchString(name) {
			return store.LicenceRef{}, "", bad("license_name: %q: letters, digits, '.' and '-', up to 64", name)
		}
		if strings.TrimSpace(text) == "" {
			return store.LicenceRef{}, "", bad("license_text: a custom licence needs its text")
		}
		expression, custom = "LicenseRef-"+name, true
	case strings.TrimSpace(expression) == "":
		return store.LicenceRef{}, "", bad("license: give an SPDX expression (e.g. MIT, Apache-2.0 OR MIT) or a custom licence")
	default:
		expression = strings.TrimSpace(expression)
		if len(expression) > 500 {
			return store.LicenceRef{}, "", bad("license: at most 500 characters")
		}
		if ok, invalid := spdxexp.ValidateLicenses([]string{expression}); !ok {
			return store.LicenceRef{}, "", bad("license: %q is not a valid SPDX expression (%s); see https://spdx.org/licenses/ or give a custom licence", expression, strings.Join(invalid, ", "))
		}
		if text == "" {
			text = "This content is licensed under " + expression + " (SPDX). The licence texts: https://spdx.org/licenses/\n"
		}
	}
	sum := sha256.New()
	enc := json.NewEncoder(sum)
	if err := enc.Encode([]string{expression, text}); err != nil {
		return store.LicenceRef{}, "", err
	}
	return store.LicenceRef{Expression: expression, Digest: "sha256:" + hex.EncodeToString(sum.Sum(nil)), Custom: custom}, text, nil
}

// RenderReadme renders a README's Markdown to HTML safe to show in the
// console: raw HTML is dropped, images become links (the console never
// loads a remote image a publisher chose), and the result goes through
// bluemonday's user-content policy.
func (c *Catalog) RenderReadme(md string) (string, error) {
	if len(md) > store.MaxReadme {
		return "", store.Errorf(store.EInvalid, "readme: at most %d KiB", store.MaxReadme>>10)
	}
	var buf bytes.Buffer
	if err := c.md.Convert([]byte(md), &buf); err != nil {
		return "", store.Errorf(store.EInvalid, "readme: %v", err)
	}
	return c.san.Sanitize(buf.String()), nil
}

// imageAsLink renders a Markdown image as a link to it, labelled with its
// alt text.
type imageAsLink struct{}

func (imageAsLink) RegisterFuncs(reg renderer.NodeRendererFuncRegisterer) {
	reg.Register(ast.KindImage, func(w util.BufWriter, src []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		img := n.(*ast.Image)
		alt := string(img.Text(src)) //nolint:staticcheck // the alt text of an image node
		if alt == "" {
			alt = "image"
		}
		fmt.Fprintf(w, `<a href="%s" rel="nofollow noopener">[%s]</a>`, util.EscapeHTML(util.URLEscape(img.Destination, true)), util.EscapeHTML([]byte(alt)))
		return ast.WalkSkipChildren, nil
	})
}

// Publish validates a publication, renders its README and records it
// (store.CmdPublishRepo, which re-checks ownership); then it attaches the
// licence to the repository's images. Errors name the field; nothing is
// stored when one is refused.
func (c *Catalog) Publish(ctx context.Context, actor string, p Publish) (*store.Publication, error) {
	ref, text, err := Licence(p.License, p.LicenseName, p.LicenseText)
	if err != nil {
		return nil, err
	}
	html, err := c.RenderReadme(p.Readme)
	if err != nil {
		return nil, err
	}
	if p.Use == "" {
		p.Use = store.UseResearch
	}
	if p.Access == "" {
		p.Access = store.AccessOpen
	}
	grant, err := grantStatement(p.Lang)
	if err != nil {
		return nil, err
	}
	kind, err := c.kindOf(p.Repo)
	if err != nil {
		return nil, err
	}
	pub, err := store.CmdPublishRepo.Propose(ctx, c.cfg.Proposer, store.PublishRepo{
		Publication: store.Publication{Repo: p.Repo, Licence: ref, Description: p.Description, Use: p.Use, GenAI: p.GenAI,
			GenAIFiled: p.GenAIFiled, Access: p.Access, Questions: p.Questions, Command: p.Command, Grant: grant, Kind: kind},
		Readme: store.Readme{Markdown: p.Readme, HTML: html}, LicenceText: text, Actor: actor,
	})
	if err != nil {
		return nil, err
	}
	if err := c.attachToRepo(ctx, pub.Repo); err != nil {
		c.log.Warn("attach the licence to the images of a published repository", "repo", pub.Repo, "err", err)
	}
	return pub, nil
}

// kindOf is what repo holds, by the artifact type of its newest manifest
// that is not a referrer (a licence, a signature): a Gantry dataset or a
// task's output is a dataset, a CNCF ModelPack manifest a model, anything
// else an image ("", which the store reads as one).
func (c *Catalog) kindOf(repo string) (string, error) {
	ms, err := c.st.RegManifests(repo)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	var newest *store.RegManifest
	for i := range ms {
		if ms[i].Subject == "" && (newest == nil || ms[i].Pushed.After(newest.Pushed)) {
			newest = &ms[i]
		}
	}
	if newest == nil {
		return "", nil
	}
	switch newest.ArtifactType {
	case data.ArtifactTypeDataset, data.ArtifactTypeOutput:
		return store.KindDataset, nil
	case data.ArtifactTypeModel:
		return store.KindModel, nil
	}
	return "", nil
}

// attachToRepo attaches the repository's licence to each of its images.
func (c *Catalog) attachToRepo(ctx context.Context, repo string) error {
	if c.cfg.Registry == nil {
		return nil
	}
	ms, err := c.st.RegManifests(repo)
	if err != nil {
		return err
	}
	for i := range ms {
		if err := c.attachNotices(ctx, repo, &ms[i]); err != nil {
			return err
		}
	}
	return nil
}

// OnManifest attaches licence notices to an image just pushed: the
// repository's own licence when it is published, and the licence of every
// published image it is built on (registry.Config.OnManifest).
func (c *Catalog) OnManifest(ctx context.Context, repo string, m *store.RegManifest) {
	if err := c.attachNotices(ctx, repo, m); err != nil {
		c.log.Warn("attach licence notices to a pushed image", "repo", repo, "digest", m.Digest, "err", err)
	}
}

func (c *Catalog) attachNotices(ctx context.Context, repo string, m *store.RegManifest) error {
	if c.cfg.Registry == nil || m.Subject != "" || len(m.Layers) == 0 {
		return nil
	}
	type notice struct {
		repo string
		ref  store.LicenceRef
	}
	var notices []notice
	if pub, err := c.st.Publication(repo); err == nil {
		notices = append(notices, notice{repo, pub.Licence})
	} else if store.ErrorCode(err) != store.ENotFound {
		return err
	}
	ds, err := c.st.Derivations(repo)
	if err != nil {
		return err
	}
	for _, d := range ds {
		base, err := c.st.RegManifest(d.Base, d.BaseManifest)
		if err != nil || len(base.Layers) > len(m.Layers) || !equalPrefix(base.Layers, m.Layers) {
			continue // this image is not the one built on that base
		}
		notices = append(notices, notice{d.Base, d.Licence})
	}
	for _, n := range notices {
		lt, err := c.st.Licence(n.ref.Digest)
		if err != nil {
			return fmt.Errorf("licence %s of %s: %w", n.ref.Digest, n.repo, err)
		}
		ann := map[string]string{AnnotationLicenses: n.ref.Expression, "org.opencontainers.image.source": n.repo,
			"org.opencontainers.image.description": "the licence of " + n.repo + ", version " + n.ref.Digest}
		if _, err := c.cfg.Registry.AttachArtifact(ctx, registryOwner(repo), repo, m, LicenceArtifactType, ann,
			[]registry.ArtifactFile{{MediaType: "text/plain", Title: "LICENSE", Data: []byte(lt.Text)}}); err != nil {
			return err
		}
	}
	return nil
}

func registryOwner(repo string) string {
	owner, _, _ := strings.Cut(repo, "/")
	return owner
}

func equalPrefix(prefix, s []string) bool {
	if len(prefix) > len(s) {
		return false
	}
	for i := range prefix {
		if prefix[i] != s[i] {
			return false
		}
	}
	return true
}

// Run reports this node's pull counts every FlushEvery, and brings the
// search index's pull counts up to date, until ctx ends.
func (c *Catalog) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if c.cfg.Registry != nil {
				c.flush(context.Background())
			}
			return
		case <-t.C:
			if c.cfg.Registry != nil {
				c.flush(ctx)
			}
			c.refresh()
		}
	}
}

func (c *Catalog) flush(ctx context.Context) {
	counts := c.cfg.Registry.TakePulls()
	if len(counts) == 0 {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := store.CmdCountPulls.Propose(fctx, c.cfg.Proposer, store.CountPulls{Counts: counts}); err != nil {
		c.log.Warn("report pull counts", "repos", len(counts), "err", err)
	}
}
