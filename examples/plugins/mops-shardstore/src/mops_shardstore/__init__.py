"""mops-shardstore: a modelops-bundle blob store in a folder, sharded one level deep like git's objects."""
