package hostnet

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// Teardown undoes Plumb from any process, whether the VMM that plumbed
// is alive or gone (SIGKILLed: its tap, and the tap's qdisc and filter,
// went with it). It removes kiln's filter from the engine's interface
// and the ingress qdisc if Plumb added it, and the tap if it is still
// there. It is idempotent: a namespace, interface, qdisc or filter that
// is gone already is no error. kiln delete calls it.
func Teardown(p Plumbing) error {
	if p.Namespace == "" {
		return nil // nothing was plumbed
	}
	err := InNamespace(p.Namespace, func() error {
		var errs []error
		if tl, err := netlink.LinkByName(p.Tap); err == nil && tl.Type() == "tuntap" {
			// The VMM still holds it open (Teardown before the VMM ends):
			// deleting the link cuts the VM off now.
			if err := netlink.LinkDel(tl); err != nil && !gone(err) {
				errs = append(errs, fmt.Errorf("delete tap %s: %w", p.Tap, err))
			}
		}
		link, err := netlink.LinkByName(p.Interface)
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return errors.Join(errs...) // the engine removed it already
		}
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("find interface %s: %w", p.Interface, err))...)
		}
		return errors.Join(append(errs, undo(link, &p))...)
	})
	if errors.Is(err, ErrNoNamespace) {
		return nil // the engine removed the namespace, and everything in it
	}
	if err != nil {
		return fmt.Errorf("disconnect %s in network namespace %s from tap %s: %w", p.Interface, p.Namespace, p.Tap, err)
	}
	return nil
}
