"""The incident as we receive it: severity on one scale, the teams that own it, whether it needs a report."""
