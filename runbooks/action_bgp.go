package runbooks

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"
)

// Speaker is Meridian's embedded BGP speaker (GoBGP v3 as a library).
type Speaker struct {
	cfg BGPConfig
	log *slog.Logger
	srv *server.BgpServer

	mu     sync.Mutex
	routes map[netip.Prefix]BGPRoute // what Meridian announces now
}

func newSpeaker(cfg BGPConfig, log *slog.Logger) *Speaker {
	return &Speaker{cfg: cfg, log: log.With("component", "runbooks.bgp"), routes: map[netip.Prefix]BGPRoute{}}
}

// Start starts the speaker, adds the peers and announces the steady state.
func (s *Speaker) Start(ctx context.Context) error {
	s.srv = server.NewBgpServer(server.LoggerOption(&bgpLogger{l: s.log}))
	go s.srv.Serve()
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: s.cfg.ASN, RouterId: s.cfg.RouterID, ListenPort: s.cfg.ListenPort,
	}}); err != nil {
		s.srv.Stop()
		return fmt.Errorf("bgp: start speaker: %w", err)
	}
	for _, p := range s.cfg.Peers {
		peer := &api.Peer{
			Conf:      &api.PeerConf{NeighborAddress: p.Address, PeerAsn: p.ASN},
			Transport: &api.Transport{LocalAddress: p.LocalAddress, RemotePort: p.Port, PassiveMode: p.Passive},
			Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: 9, KeepaliveInterval: 3}},
			AfiSafis: []*api.AfiSafi{
				{Config: &api.AfiSafiConfig{Family: family(true), Enabled: true}},
				{Config: &api.AfiSafiConfig{Family: family(false), Enabled: true}},
			},
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peer}); err != nil {
			s.Stop(ctx)
			return fmt.Errorf("bgp: add peer %s: %w", p.Address, err)
		}
	}
	for _, r := range s.cfg.Announce {
		if err := s.Announce(ctx, r); err != nil {
			s.Stop(ctx)
			return err
		}
	}
	return nil
}

// Stop stops the speaker (its sessions close; peers drop its routes).
func (s *Speaker) Stop(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.StopBgp(ctx, &api.StopBgpRequest{})
	s.srv.Stop()
	s.srv = nil
	return err
}

func family(v4 bool) *api.Family {
	if v4 {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

func (s *Speaker) path(pf netip.Prefix, r BGPRoute) (*api.Path, error) {
	v4 := pf.Addr().Is4()
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: pf.Addr().String(), PrefixLen: uint32(pf.Bits())})
	if err != nil {
		return nil, err
	}
	var attrs []*anypb.Any
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
	attrs = append(attrs, origin)
	if v4 {
		nh, _ := anypb.New(&api.NextHopAttribute{NextHop: s.cfg.NextHop})
		attrs = append(attrs, nh)
	} else {
		mp, _ := anypb.New(&api.MpReachNLRIAttribute{Family: family(false), NextHops: []string{s.cfg.NextHop6}, Nlris: []*anypb.Any{nlri}})
		attrs = append(attrs, mp)
	}
	if r.Prepend > 0 {
		nums := make([]uint32, r.Prepend)
		for i := range nums {
			nums[i] = s.cfg.ASN
		}
		a, _ := anypb.New(&api.AsPathAttribute{Segments: []*api.AsSegment{{Type: api.AsSegment_AS_SEQUENCE, Numbers: nums}}})
		attrs = append(attrs, a)
	}
	if len(r.Communities) > 0 {
		var cs []uint32
		for _, c := range r.Communities {
			v, err := parseCommunity(c)
			if err != nil {
				return nil, err
			}
			cs = append(cs, v)
		}
		a, _ := anypb.New(&api.CommunitiesAttribute{Communities: cs})
		attrs = append(attrs, a)
	}
	if r.LocalPref > 0 {
		a, _ := anypb.New(&api.LocalPrefAttribute{LocalPref: r.LocalPref})
		attrs = append(attrs, a)
	}
	if r.MED > 0 {
		a, _ := anypb.New(&api.MultiExitDiscAttribute{Med: r.MED})
		attrs = append(attrs, a)
	}
	return &api.Path{Family: family(v4), Nlri: nlri, Pattrs: attrs}, nil
}

// Announce announces (or re-announces with new attributes) a prefix.
func (s *Speaker) Announce(ctx context.Context, r BGPRoute) error {
	if err := s.cfg.checkRoute(r); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	pf := netip.MustParsePrefix(r.Prefix)
	p, err := s.path(pf, r)
	if err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return fmt.Errorf("bgp: speaker not started")
	}
	if _, err := s.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p}); err != nil {
		return fmt.Errorf("bgp: announce %s: %w", pf, err)
	}
	s.routes[pf] = r
	return nil
}

// Withdraw withdraws a prefix Meridian announces; withdrawing one it does not
// announce is a no-op.
func (s *Speaker) Withdraw(ctx context.Context, prefix string) error {
	pf, err := s.cfg.allowedPrefix(prefix)
	if err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return fmt.Errorf("bgp: speaker not started")
	}
	r, ok := s.routes[pf]
	if !ok {
		return nil
	}
	p, err := s.path(pf, r)
	if err != nil {
		return err
	}
	if err := s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: p.Family, Path: p}); err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", pf, err)
	}
	delete(s.routes, pf)
	return nil
}

// Route returns what Meridian announces for prefix now.
func (s *Speaker) Route(prefix netip.Prefix) (BGPRoute, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.routes[prefix]
	return r, ok
}

// PeerStates returns each configured peer's session state (e.g.
// ESTABLISHED, ACTIVE).
func (s *Speaker) PeerStates(ctx context.Context) (map[string]string, error) {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil, fmt.Errorf("bgp: speaker not started")
	}
	out := map[string]string{}
	err := srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		st := "UNKNOWN"
		if p.State != nil {
			st = p.State.SessionState.String()
		}
		out[p.Conf.NeighborAddress] = st
	})
	return out, err
}

// checkPeers fails unless every configured peer is established: a change
// that reaches only some peers leaves the network half-moved.
func (s *Speaker) checkPeers(ctx context.Context) error {
	st, err := s.PeerStates(ctx)
	if err != nil {
		return err
	}
	var down []string
	for _, p := range s.cfg.Peers {
		if st[p.Address] != api.PeerState_ESTABLISHED.String() {
			down = append(down, p.Address+" is "+st[p.Address])
		}
	}
	sort.Strings(down)
	if len(down) > 0 {
		return fmt.Errorf("bgp: peer not established: %v", down)
	}
	return nil
}

// bgpAction is a planned BGP step.
type bgpAction struct {
	sp    *Speaker
	op    string
	route BGPRoute
	pf    netip.Prefix

	done    bool
	prev    BGPRoute
	hadPrev bool
}

func (a *bgpAction) Kind() string { return "bgp" }

func (a *bgpAction) Describe() string {
	if a.op == "withdraw" {
		return fmt.Sprintf("bgp: withdraw %s from every peer", a.pf)
	}
	return fmt.Sprintf("bgp: announce %s to every peer with %s", a.pf, routeAttrs(a.route))
}

func routeAttrs(r BGPRoute) string {
	return fmt.Sprintf("prepend %d, communities %v, local_pref %d, med %d", r.Prepend, r.Communities, r.LocalPref, r.MED)
}

func (a *bgpAction) Apply(ctx context.Context) (string, error) {
	if err := a.sp.checkPeers(ctx); err != nil {
		return "", err
	}
	a.prev, a.hadPrev = a.sp.Route(a.pf)
	var err error
	if a.op == "withdraw" {
		err = a.sp.Withdraw(ctx, a.pf.String())
	} else {
		err = a.sp.Announce(ctx, a.route)
	}
	if err != nil {
		return "", err
	}
	a.done = true
	before := "not announced"
	if a.hadPrev {
		before = "announced with " + routeAttrs(a.prev)
	}
	return fmt.Sprintf("%s %s (was %s)", a.op, a.pf, before), nil
}

func (a *bgpAction) Undo(ctx context.Context) (string, error) {
	if !a.done {
		return "nothing to restore", nil
	}
	if a.hadPrev {
		if err := a.sp.Announce(ctx, a.prev); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s re-announced with %s", a.pf, routeAttrs(a.prev)), nil
	}
	if err := a.sp.Withdraw(ctx, a.pf.String()); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s withdrawn (was not announced before)", a.pf), nil
}

// bgpLogger sends GoBGP's logs to slog.
type bgpLogger struct {
	l     *slog.Logger
	level gobgplog.LogLevel
}

func (b *bgpLogger) args(f gobgplog.Fields) []any {
	out := make([]any, 0, 2*len(f))
	for k, v := range f {
		out = append(out, k, v)
	}
	return out
}
func (b *bgpLogger) Panic(msg string, f gobgplog.Fields) { b.l.Error(msg, b.args(f)...) }
func (b *bgpLogger) Fatal(msg string, f gobgplog.Fields) { b.l.Error(msg, b.args(f)...) }
func (b *bgpLogger) Error(msg string, f gobgplog.Fields) { b.l.Error(msg, b.args(f)...) }
func (b *bgpLogger) Warn(msg string, f gobgplog.Fields)  { b.l.Warn(msg, b.args(f)...) }
func (b *bgpLogger) Info(msg string, f gobgplog.Fields)  { b.l.Debug(msg, b.args(f)...) }
func (b *bgpLogger) Debug(msg string, f gobgplog.Fields) {}
func (b *bgpLogger) SetLevel(l gobgplog.LogLevel)        { b.level = l }
func (b *bgpLogger) GetLevel() gobgplog.LogLevel         { return b.level }
