//! The image side: references, registry client, content store, layer unpack, bundle config.
