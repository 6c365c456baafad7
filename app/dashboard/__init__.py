"""Dashboard logic: fleet overview query, resampling, data gaps, GeoJSON tracks, lane statistics."""
