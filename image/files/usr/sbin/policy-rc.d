#!/bin/sh
# Present only while the image is built: packages never start services in the build folder.
exit 101
