"""Evidence about an incident: timeline entries from every source, and the key metrics they give."""
