// The label side's files and devices are RawIO's: one implementation of positional I/O for both towers. The
// names stay available to everyone who imports ZFSImage (or ZLabel), as they were before RawIO existed.

public import RawIO

/// A disk image file or a block device, opened by RawIO (see `RawIO.ImageFile`).
public typealias ImageFile = RawIO.ImageFile
/// A failure to open, read, write or flush an image, naming the file and the byte offset (see `RawIO.ImageError`).
public typealias ImageError = RawIO.ImageError

extension ImageFile: ImageStorage {}
