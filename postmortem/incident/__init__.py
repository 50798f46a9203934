"""The incident as we receive it: each source's incident read into ours (pagerduty, opsgenie, with the
payload readers they share), severity on one scale, the teams that own it, whether it needs a report."""
