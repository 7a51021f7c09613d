"""``image``: build the cluster's image once and stage it on the play's hosts."""

from __future__ import annotations

from daskfleet.playbook.module import ClusterCall, ClusterModule, ModuleResult, register


@register
class ImageModule(ClusterModule):
    """Facts, observation, image build and plan, then ship what hosts lack.

    A host is changed when it was sent image layers; in check mode, when it
    would be.
    """

    name = "image"

    def run(self, call: ClusterCall) -> ModuleResult:
        call.session.stage()
        ctx = call.ctx
        assert ctx.image is not None and ctx.plan is not None
        needs = frozenset(ctx.plan.needs_image)
        return ModuleResult(
            msg=f"image {ctx.image.tag}",
            data={
                "image": ctx.image.tag,
                "id": ctx.image.id,
                "built": ctx.image.built,
                "needs_image": sorted(needs),
                "transfer_bytes": dict(ctx.plan.transfer_bytes),
                "distribution": (
                    ctx.plan.distribution.to_dict() if ctx.plan.distribution else None
                ),
            },
            changed_hosts=needs if call.check else None,
        )
