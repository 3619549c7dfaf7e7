// Amazon's published PV-GRUB kernel images (AKIs), the fallback when DescribeImages lists none in a region.
//
// Source: the Amazon EC2 User Guide, page "User provided kernels" (UserProvidedKernels), section "Amazon PV-GRUB
// Kernel Image IDs", as kept in the awsdocs/amazon-ec2-user-guide repository (doc_source/UserProvidedKernels.md,
// its last revision of 2021-05-10, commit 75ee4cbd; the repository was archived on 2023-06-15). The page lists,
// per region, the hd0 AKIs of PV-GRUB 1.05 for i386 and x86_64, says "Register new AMIs using an hd0 AKI", keeps
// hd00 AKIs only "for backward compatibility" without listing them, and says PV-GRUB 1.05 looks for menu.lst in
// (hd0)/boot/grub, then (hd0,0) to (hd0,3): so the hd0 AKI serves an image with a partition table too.

/// Where a paravirtual AMI's kernel id came from.
public enum KernelSource: String, Sendable, Equatable, Codable {
    /// Given with `--kernel-id aki-…`.
    case given
    /// Amazon's newest PV-GRUB image as DescribeImages lists it in the region.
    case describeImages = "describe-images"
    /// Not listed by DescribeImages; taken from ``PVGrubTable`` (AWS's published table).
    case documentedTable = "documented-table"
}

/// AWS's published table of PV-GRUB AKI ids per region (see the comment at the top of the file for its source
/// and date). Only a fallback: the region's own DescribeImages answer comes first.
public enum PVGrubTable {
    /// Where the table comes from, for messages.
    public static let source =
        "the EC2 User Guide's \"User provided kernels\" page, Amazon PV-GRUB Kernel Image IDs, as of 2021-05-10"

    /// One published AKI.
    public struct Entry: Sendable, Equatable {
        /// The region.
        public var region: String
        /// `i386` or `x86_64`.
        public var architecture: String
        /// The kernel image id.
        public var imageID: String
        /// Its image name.
        public var name: String
    }

    /// The table, region by region as published.
    public static let entries: [Entry] = [
        Entry(region: "ap-northeast-1", architecture: "i386", imageID: "aki-f975a998", name: "pv-grub-hd0_1.05-i386.gz"),
        Entry(region: "ap-northeast-1", architecture: "x86_64", imageID: "aki-7077ab11", name: "pv-grub-hd0_1.05-x86_64.gz"),
        Entry(region: "ap-southeast-1", architecture: "i386", imageID: "aki-17a40074", name: "pv-grub-hd0_1.05-i386.gz"),
        Entry(region: "ap-southeast-1", architecture: "x86_64", imageID: "aki-73a50110", name: "pv-grub-hd0_1.05-x86_64.gz"),
        Entry(region: "ap-southeast-2", architecture: "i386", imageID: "aki-ba5665d9", name: "pv-grub-hd0_1.05-i386.gz"),
        Entry(region: "ap-southeast-2", architecture: "x86_64", imageID: "aki-66506305", name: "pv-grub-hd0_1.05-x86_64.gz"),
        Entry(region: "eu-central-1", architecture: "i386", imageID: "aki-1419e57b", name: "pv-grub-hd0_1.05-i386.gz"),
        Entry(region: "eu-central-1", architecture: "x86_64", imageID: "aki-931fe3fc", name: "pv-grub-hd0_1.05-x86_64.gz"),
        Entry(region: "eu-west-1", architecture: "i386", imageID: "aki-1c9fd86f", name: "pv-grub-hd0_1.05-i386.gz"),
        Entry(region: "eu-west-1", architecture: "x86_64", imageID: "aki-dc9ed9af", name: "pv-grub-hd0_1.05-x86_64.gz"),
        Entry(region: "sa-east-1", architecture: "i386", imageID: "aki-7cd34110", name: "pv-grub-hd0_1.05-i386.gz"),
        Entry(region: "sa-east-1", architecture: "x86_64", imageID: "aki-912fbcfd", name: "pv-grub-hd0_1.05-x86_64.gz"),
        Entry(region: "us-east-1", architecture: "i386", imageID: "aki-04206613", name: "pv-grub-hd0_1.05-i386.gz"),
        Entry(region: "us-east-1", architecture: "x86_64", imageID: "aki-5c21674b", name: "pv-grub-hd0_1.05-x86_64.gz"),
        Entry(region: "us-gov-west-1", architecture: "i386", imageID: "aki-5ee9573f", name: "pv-grub-hd0_1.05-i386.gz"),
        Entry(region: "us-gov-west-1", architecture: "x86_64", imageID: "aki-9ee55bff", name: "pv-grub-hd0_1.05-x86_64.gz"),
        Entry(region: "us-west-1", architecture: "i386", imageID: "aki-43cf8123", name: "pv-grub-hd0_1.05-i386.gz"),
        Entry(region: "us-west-1", architecture: "x86_64", imageID: "aki-59cc8239", name: "pv-grub-hd0_1.05-x86_64.gz"),
        Entry(region: "us-west-2", architecture: "i386", imageID: "aki-7a69931a", name: "pv-grub-hd0_1.05-i386.gz"),
        Entry(region: "us-west-2", architecture: "x86_64", imageID: "aki-70cb0e10", name: "pv-grub-hd0_1.05-x86_64.gz"),
    ]

    /// The published AKI for a region and architecture. The table lists hd0 AKIs only, which AWS says to use
    /// for new AMIs and which also search partitions 1-4 for menu.lst, so it answers for either variant.
    public static func kernel(region: String, architecture: String) -> Entry? {
        entries.first { $0.region == region && $0.architecture == architecture }
    }
}
