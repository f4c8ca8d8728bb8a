import torch
import torch.distributed as dist


def all_gather(input_, process_group):
    out = torch.empty(
        dist.get_world_size(process_group) * input_.shape[0],
        *input_.shape[1:],
        dtype=input_.dtype,
        device=input_.device,
    )
    dist.all_gather_into_tensor(out, input_.contiguous(), group=process_group)
    return out
